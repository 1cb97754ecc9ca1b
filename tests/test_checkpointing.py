"""Publishing integrity and divergence stops, each under an injected fault (issue 12, items 3 and 4):
stale files from an earlier save, staging left by a crash, a checkpoint replaced mid-crash, a
checkpoint without optimizer state, targets replaced mid-crash, two runs in one folder, and weights
poisoned by an overflowing gradient under a finite loss."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from text2token import Text2TokenModel
from text2token.arguments import Text2TokenTrainingArguments
from text2token.checkpointing import (
    IncompleteCheckpointError,
    NonFiniteLossError,
    NonFiniteWeightsError,
    last_complete_checkpoint,
)
from text2token.output_lock import LOCK_FILE, OutputFolderLockedError
from text2token.targets import build_data_driven_targets, load_targets, save_targets
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES


def _trainer(model, tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3,
                  logging_steps=1, save_steps=2, report_to="none", use_cpu=True, seed=0)
    values.update(overrides)
    corpus = datasets.Dataset.from_dict({"text": SENTENCES * 4})
    return Text2TokenTrainer(model=model, args=Text2TokenTrainingArguments(**values),
                             train_dataset=build_data_driven_targets(corpus, model.tokenizer))


def _replace_failing_for(name):
    """An os.replace that raises when its destination is `name`, as a full disk or a kill would."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == name:
            raise OSError(f"injected fault: cannot move {src} to {dst}")
        return real(src, dst, *args, **kwargs)

    return replace


def test_a_sharded_save_after_an_unsharded_one_reloads_the_new_weights(tiny_model, tmp_path, monkeypatch):
    trainer = _trainer(tiny_model, tmp_path, save_strategy="no")
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file()
    with torch.no_grad():
        tiny_model.backbone.get_decoder().norm.weight.add_(0.5)  # new weights the old file does not hold
    monkeypatch.setattr(tiny_model, "save_pretrained", functools.partial(tiny_model.save_pretrained,
                                                                         max_shard_size="1MB"))
    trainer.save_model()
    assert (out / "model.safetensors.index.json").is_file()
    assert not (out / "model.safetensors").exists(), "the old unsharded weights were left beside the new shards"
    reloaded = Text2TokenModel.from_pretrained(out)
    np.testing.assert_allclose(reloaded.encode(SENTENCES), tiny_model.encode(SENTENCES), atol=1e-5)


def test_staging_left_by_a_crash_is_cleared_before_reuse(tiny_model, tmp_path):
    out = tmp_path / "out"
    (out / ".final-staging").mkdir(parents=True)
    (out / ".final-staging" / "stale-weights.safetensors").write_bytes(b"from a crashed final save")
    (out / ".checkpoint-staging" / "checkpoint-2").mkdir(parents=True)
    (out / ".checkpoint-staging" / "checkpoint-2" / "stale.safetensors").write_bytes(b"from a crashed checkpoint")
    trainer = _trainer(tiny_model, tmp_path)
    trainer.train()
    trainer.save_model()
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    assert not (out / "checkpoint-2" / "stale.safetensors").exists()
    assert (out / "config.json").is_file() and not (out / "stale-weights.safetensors").exists()


def test_replacing_a_checkpoint_keeps_the_old_one_until_the_new_one_is_in(tiny_model, tmp_path, monkeypatch):
    trainer = _trainer(tiny_model, tmp_path)
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    before = load_file(checkpoint / "model.safetensors")
    monkeypatch.setattr(os, "replace", _replace_failing_for("checkpoint-2"))
    with pytest.raises(OSError, match="injected fault"):
        trainer._save_checkpoint(trainer.model, trial=None)  # the same step saved again
    monkeypatch.undo()
    assert (checkpoint / "optimizer.pt").is_file(), "the old checkpoint was deleted before the new one was in"
    assert load_file(checkpoint / "model.safetensors").keys() == before.keys()
    # A kill between "old aside" and "new in" leaves the old one aside; the next look puts it back.
    os.rename(checkpoint, tmp_path / "out" / ".replaced-checkpoint-2")
    assert last_complete_checkpoint(tmp_path / "out") == str(checkpoint)
    assert (checkpoint / "trainer_state.json").is_file()


@pytest.mark.parametrize("lost", ["optimizer.pt", "scheduler.pt"])
def test_a_checkpoint_without_optimizer_or_scheduler_state_is_refused(tiny_model, tmp_path, lost):
    _trainer(tiny_model, tmp_path).train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    (checkpoint / lost).unlink()
    resumed = _trainer(tiny_model, tmp_path, max_steps=4)
    with pytest.raises(IncompleteCheckpointError, match=rf"checkpoint-2 is missing \['{lost}'\]: resuming from it "
                                                        "would restart the optimizer"):
        resumed.train(resume_from_checkpoint=str(checkpoint))


def test_replacing_targets_never_loses_both(real_tokenizer, tmp_path, monkeypatch):
    def targets(texts):
        return build_data_driven_targets(datasets.Dataset.from_dict({"text": texts}), real_tokenizer)

    path = tmp_path / "targets"
    save_targets(targets(SENTENCES[:2]), path)
    monkeypatch.setattr(os, "replace", _replace_failing_for("targets"))
    with pytest.raises(OSError, match="injected fault"):
        save_targets(targets(SENTENCES), path)
    monkeypatch.undo()
    assert load_targets(path)["text"] == SENTENCES[:2], "the old targets are lost"
    # A kill after "old aside": the old targets are found again.
    os.rename(path, tmp_path / ".targets.replaced")
    assert load_targets(path)["text"] == SENTENCES[:2]
    save_targets(targets(SENTENCES), path)
    assert load_targets(path)["text"] == SENTENCES and not list(tmp_path.glob(".targets.*"))


def test_a_second_run_in_the_same_output_folder_is_refused(tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(OutputFolderLockedError, match=rf"output folder {out} is in use by another run "
                                                          rf"\(pid {holder.pid}"):
            _trainer(tiny_model, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and taken over.
    _trainer(tiny_model, tmp_path)
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_an_overflowing_gradient_never_saves_nan_weights_nor_rotates_away_the_good_checkpoint(tiny_model, tmp_path):
    # save_total_limit=1: before the fix, the NaN checkpoint saved at the stop replaced checkpoint-2.
    trainer = _trainer(tiny_model, tmp_path, max_steps=6, save_total_limit=1)
    lora_b = next(p for n, p in tiny_model.named_parameters() if "lora_B" in n)
    backwards = []

    def overflow_on_third_step(grad):
        backwards.append(1)
        return grad * float("inf") if len(backwards) == 3 else grad

    lora_b.register_hook(overflow_on_third_step)
    with pytest.raises(NonFiniteWeightsError, match=r"NaN or infinite after step 3.*The last saved checkpoint is "
                                                    r".*checkpoint-2"):
        trainer.train()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert all(torch.isfinite(t).all() for t in load_file(out / "checkpoint-2" / "model.safetensors").values())


@pytest.mark.parametrize("loss", ["simcse", "mntp"])
def test_plain_text_losses_stop_on_a_non_finite_loss(tiny_model, tmp_path, monkeypatch, loss):
    texts = datasets.Dataset.from_dict({"text": SENTENCES * 4})
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4,
                                       save_steps=2, report_to="none", use_cpu=True, loss=loss)
    trainer = Text2TokenTrainer(model=tiny_model, args=args, train_dataset=texts)
    real, calls = trainer.loss.forward, []

    def nan_on_third_call(features):
        calls.append(1)
        result = real(features)
        return dataclasses.replace(result, loss=result.loss * float("nan")) if len(calls) == 3 else result

    monkeypatch.setattr(trainer.loss, "forward", nan_on_third_call)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 3"):
        trainer.train()
    assert (tmp_path / "out" / "checkpoint-2" / "model.safetensors").is_file()
