"""Checkpoints that are whole or invisible, and a clear stop when the loss stops being finite.

Trainer writes `checkpoint-N` in place, file by file, so a crash mid-save would leave a folder that
`get_last_checkpoint` picks and resume then fails on. `Text2TokenTrainer` writes each checkpoint
under a hidden staging folder and renames it into place when complete; `last_complete_checkpoint`
also refuses a checkpoint folder that lost a file, naming it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

STAGING_DIR = ".checkpoint-staging"
FINAL_STAGING_DIR = ".final-staging"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.json"
RESUME_FILES = ("optimizer.pt", "scheduler.pt")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good state was saved before stopping."""


def publish_checkpoint(staging_root: str, run_dir: str, step: int) -> str:
    """Move `<staging_root>/checkpoint-<step>` to `<run_dir>/checkpoint-<step>` in one rename."""
    name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
    final = os.path.join(run_dir, name)
    if os.path.exists(final):  # the same step saved again (a resumed run's first save)
        shutil.rmtree(final)
    os.replace(os.path.join(staging_root, name), final)
    shutil.rmtree(staging_root, ignore_errors=True)
    return final


def publish_files(staging: str, folder: str) -> None:
    """Move every file of `staging` into `folder`, config.json last, after removing the old one: while
    the move runs, `from_pretrained(folder)` finds no config and fails rather than mixing old and new
    files, and once config.json is there every file it describes is in place."""
    old_config = os.path.join(folder, CONFIG_FILE)
    if os.path.exists(old_config):
        os.remove(old_config)
    names = sorted(os.listdir(staging), key=lambda name: name == CONFIG_FILE)
    for name in names:
        destination = os.path.join(folder, name)
        if os.path.isdir(destination) and not os.path.islink(destination):
            shutil.rmtree(destination)
        os.replace(os.path.join(staging, name), destination)
    shutil.rmtree(staging, ignore_errors=True)


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` in `output_dir`, after checking it holds what resuming needs."""
    if not os.path.isdir(output_dir):
        return None
    checkpoint = get_last_checkpoint(str(output_dir))
    if checkpoint is None:
        return None
    missing = [f for f in (MODEL_FILE, STATE_FILE) if not (Path(checkpoint) / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"checkpoint {checkpoint} is missing {missing}: it cannot be resumed from. Delete that folder to "
            f"resume from the one before it, or pass --resume_from_checkpoint with another checkpoint")
    return checkpoint


def describe_batch(tokenizer, input_ids, attention_mask, limit: int = 2) -> str:
    """A short description of a batch for error messages: its size and its first texts."""
    texts = []
    for ids, mask in zip(input_ids[:limit], attention_mask[:limit]):
        texts.append(repr(tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)[:80]))
    return f"{len(input_ids)} texts, starting with {', '.join(texts)}"
