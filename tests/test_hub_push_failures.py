"""Checkpoint pushes that fail during training (hub_strategy=every_save) are warnings the user sees,
and a summary at the end; before, training ended normally with an empty repo and an INFO line."""

import logging
import uuid

import datasets

from hub_server import HubError
from model_fixtures import SENTENCES
from text2token.arguments import Text2TokenTrainingArguments
from text2token.targets import build_data_driven_targets
from text2token.trainer import Text2TokenTrainer


def test_failing_checkpoint_pushes_are_warned_and_summarised(hub, tiny_model, tmp_path, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise HubError(500, "injected: the Hub is down")

    monkeypatch.setattr(hub, "commit", refuse)
    repo_id = f"loopback/failing-{uuid.uuid4().hex[:10]}"
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": SENTENCES * 4}), tiny_model.tokenizer)
    args = Text2TokenTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, save_steps=2, per_device_train_batch_size=4, logging_steps=1,
        report_to="none", use_cpu=True, push_to_hub=True, hub_model_id=repo_id, hub_strategy="every_save",
        hub_always_push=True)
    trainer = Text2TokenTrainer(model=tiny_model, args=args, train_dataset=targets)
    with caplog.at_level(logging.WARNING, logger="text2token"):
        trainer.train()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(f"Pushing checkpoint step 2 to {repo_id} failed" in w and "injected" in w for w in warnings), warnings
    assert any(f"2 of 2 checkpoint pushes to {repo_id} failed (steps 2, 4)" in w for w in warnings), warnings
