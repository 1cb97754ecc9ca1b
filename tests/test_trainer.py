import json

import datasets
import numpy as np
import pytest
import torch

from text2token import Text2TokenModel
from text2token.arguments import Text2TokenTrainingArguments
from text2token.collator import Text2TokenCollator
from text2token.targets import TargetInfo, attach_info, build_data_driven_targets
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES


def _targets(tokenizer):
    corpus = datasets.Dataset.from_dict({"text": SENTENCES * 4})
    return build_data_driven_targets(corpus, tokenizer)


def _args(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=5e-3,
                  logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0)
    values.update(overrides)
    return Text2TokenTrainingArguments(**values)


def test_collator_pads_sparse_targets_with_zero_weight(real_tokenizer):
    features = [{"text": "a b", "target_ids": [5, 6, 7], "target_weights": [0.2, 0.3, 0.5]},
                {"text": "c", "target_ids": [9], "target_weights": [1.0]}]
    batch = Text2TokenCollator(real_tokenizer, max_length=16)(features)
    assert batch["target_ids"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["target_weights"].tolist()[1] == [1.0, 0.0, 0.0]
    assert batch["input_ids"].shape == batch["attention_mask"].shape


def test_training_moves_lora_only_and_lowers_the_loss(tiny_model, tmp_path):
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    trainer = Text2TokenTrainer(model=tiny_model, args=_args(tmp_path, max_steps=12),
                                train_dataset=_targets(tiny_model.tokenizer))
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    moved = {n for n, p in tiny_model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all("lora_" in n for n in moved), f"non-LoRA parameters moved: {moved}"
    assert any("lora_A" in n for n in moved) and any("lora_B" in n for n in moved)
    head = tiny_model.lm_head.weight
    assert torch.equal(head, before["backbone.model.embed_tokens.weight"]), "the LM head must stay frozen"


def test_final_save_merges_lora_and_reloads_identically(tiny_model, tmp_path):
    trainer = Text2TokenTrainer(model=tiny_model, args=_args(tmp_path, max_steps=2),
                                train_dataset=_targets(tiny_model.tokenizer))
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    config = json.loads((out / "config.json").read_text())
    assert config["lora"] is None, "the final model is saved merged"
    assert (out / "tokenizer.json").is_file() and (out / "training_args.json").is_file()
    assert not list(out.glob("*.bin")), "no pickled files next to the model"
    reloaded = Text2TokenModel.from_pretrained(out)
    np.testing.assert_allclose(reloaded.encode(SENTENCES), tiny_model.encode(SENTENCES), atol=1e-5)


def test_targets_from_another_tokenizer_are_refused(tiny_model, tmp_path):
    targets = _targets(tiny_model.tokenizer)
    info = TargetInfo(method="data", params={}, backbone="other", tokenizer_fingerprint="ffffffffffffffff",
                      vocab_size=10, corpus="", corpus_fingerprint="")
    with pytest.raises(ValueError, match="ffffffffffffffff"):
        Text2TokenTrainer(model=tiny_model, args=_args(tmp_path), train_dataset=attach_info(targets, info))


def test_gradient_checkpointing_still_trains_lora(tiny_model, tmp_path):
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters() if "lora_" in n}
    args = _args(tmp_path, max_steps=2, gradient_checkpointing=True,
                 gradient_checkpointing_kwargs={"use_reentrant": False})
    Text2TokenTrainer(model=tiny_model, args=args, train_dataset=_targets(tiny_model.tokenizer)).train()
    assert tiny_model.backbone.get_decoder().gradient_checkpointing
    moved = [n for n, p in tiny_model.named_parameters() if "lora_" in n and not torch.equal(p, before[n])]
    assert len(moved) == len(before)


def test_simcse_loss_trains_on_plain_text(tiny_model, tmp_path):
    from text2token.commands.train import load_training_texts
    from text2token.arguments import DataArguments

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(SENTENCES * 2) + "\n   \n")
    texts = load_training_texts(DataArguments(corpus=str(corpus)))
    assert texts.column_names == ["text"] and len(texts) == 2 * len(SENTENCES)
    tiny_model.merge_lora()
    tiny_model.add_lora({"r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]})
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters() if "lora_" in n}
    trainer = Text2TokenTrainer(model=tiny_model, args=_args(tmp_path, loss="simcse", max_steps=3),
                                train_dataset=texts)
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert any(not torch.equal(p, before[n]) for n, p in tiny_model.named_parameters() if "lora_" in n)


def test_unknown_loss_is_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"loss='triplet': expected one of \('token_targets', 'simcse', 'mntp'\)"):
        _args(tmp_path, loss="triplet")
    with pytest.raises(ValueError, match=r"loss='triplet': expected one of"):
        Text2TokenTrainer(model=tiny_model, args=_args(tmp_path), train_dataset=_targets(tiny_model.tokenizer),
                          loss="triplet")
