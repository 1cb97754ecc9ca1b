"""Checkpoints and final saves that are whole or invisible, and a clear stop when training diverges.

Trainer writes `checkpoint-N` in place, file by file, so a crash mid-save would leave a folder that
`get_last_checkpoint` picks and resume then fails on. `Text2TokenTrainer` writes each checkpoint
under a hidden staging folder (cleared first: a crashed save may have left one) and renames it into
place when complete; a checkpoint saved again for the same step replaces the old one only once the
new one is complete (the old one is moved aside, then deleted). `last_complete_checkpoint` refuses a
checkpoint folder that lost a file, naming it.

A final save shares its folder with checkpoints and targets, so it is published file by file
(`publish_files`); a hidden manifest lists the model files of the last save, so files an earlier
save wrote and this one does not (an unsharded `model.safetensors` before a sharded save) are removed
rather than reloaded beside the new config. The same manifest says what `push_to_hub` may upload.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from pathlib import Path

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from .files import write_atomic

STAGING_DIR = ".checkpoint-staging"
FINAL_STAGING_DIR = ".final-staging"
REPLACED_PREFIX = ".replaced-"
MANIFEST_FILE = ".text2token-model-files.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.json"
RESUME_FILES = ("optimizer.pt", "scheduler.pt")
# Weight files a save may have left without a manifest (folders saved before manifests existed).
WEIGHT_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
                   "pytorch_model*.bin", "pytorch_model.bin.index.json", "adapter_model.safetensors",
                   "adapter_config.json")


class NonFiniteTrainingError(RuntimeError):
    """Training diverged (a NaN or infinite loss or weight); no non-finite state was saved."""


class NonFiniteLossError(NonFiniteTrainingError):
    """The loss became NaN or infinite."""


class NonFiniteWeightsError(NonFiniteTrainingError):
    """A trainable weight became NaN or infinite (e.g. an overflowing gradient under a finite loss)."""


class IncompleteCheckpointError(FileNotFoundError):
    """A checkpoint lacks a file that resuming needs."""


def clear(path: str | os.PathLike) -> None:
    """Remove a leftover file or folder (a staging folder from a crashed save)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _write_json(path: str, value) -> None:
    write_atomic(path, json.dumps(value))


def write_manifest(folder: str, names) -> None:
    """Record the model files (top-level names) of a save in `folder`."""
    _write_json(os.path.join(folder, MANIFEST_FILE), sorted(set(names)))


def read_manifest(folder: str) -> list[str]:
    try:
        with open(os.path.join(folder, MANIFEST_FILE)) as handle:
            return list(json.load(handle))
    except (FileNotFoundError, ValueError):
        return []


def model_file_paths(folder: str) -> list[str]:
    """The model files of the save in `folder`, as relative paths (folders expanded), from its manifest."""
    paths = []
    for name in read_manifest(folder):
        full = os.path.join(folder, name)
        if os.path.isdir(full):
            paths += [os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(full) for f in files]
        elif os.path.isfile(full):
            paths.append(name)
    return sorted(paths)


def publish_checkpoint(staging_root: str, run_dir: str, step: int) -> str:
    """Move `<staging_root>/checkpoint-<step>` to `<run_dir>/checkpoint-<step>`. A checkpoint already
    there (the same step saved again) is moved aside first and deleted only once the new one is in."""
    recover_replaced_checkpoints(run_dir)
    name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
    final, aside = os.path.join(run_dir, name), os.path.join(run_dir, REPLACED_PREFIX + name)
    if os.path.exists(final):
        os.rename(final, aside)
    try:
        os.replace(os.path.join(staging_root, name), final)
    except BaseException:
        if os.path.exists(aside) and not os.path.exists(final):
            os.rename(aside, final)
        raise
    if os.path.exists(aside):
        shutil.rmtree(aside)
    shutil.rmtree(staging_root, ignore_errors=True)
    return final


def recover_replaced_checkpoints(run_dir: str | os.PathLike) -> None:
    """After a crash between moving an old checkpoint aside and moving its replacement in: put the
    old one back (or drop it when the replacement made it)."""
    if not os.path.isdir(run_dir):
        return
    for aside in Path(run_dir).glob(f"{REPLACED_PREFIX}{PREFIX_CHECKPOINT_DIR}-*"):
        final = aside.with_name(aside.name[len(REPLACED_PREFIX):])
        if final.exists():
            shutil.rmtree(aside)
        else:
            os.rename(aside, final)


def publish_files(staging: str, folder: str) -> None:
    """Move every entry of `staging` into `folder`, config.json last, after removing the old one: while
    the move runs, `from_pretrained(folder)` finds no config and fails rather than mixing old and new
    files, and once config.json is there every file it describes is in place. Model files of the
    previous save that this one does not produce are removed before the new ones move in."""
    new = set(os.listdir(staging)) - {MANIFEST_FILE}
    old = set(read_manifest(folder)) | {name for name in os.listdir(folder)
                                        if any(fnmatch.fnmatch(name, p) for p in WEIGHT_PATTERNS)}
    old_config = os.path.join(folder, CONFIG_FILE)
    if os.path.exists(old_config):
        os.remove(old_config)
    # From here on, the folder's manifest names every model file that may be in it, so a crash at any
    # point leaves nothing the next save would not clear.
    write_manifest(folder, old | set(read_manifest(staging)))
    for name in sorted(old - new):
        clear(os.path.join(folder, name))
    names = sorted(new, key=lambda name: name == CONFIG_FILE)
    if os.path.exists(os.path.join(staging, MANIFEST_FILE)):
        names.insert(-1 if CONFIG_FILE in new else len(names), MANIFEST_FILE)
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
    recover_replaced_checkpoints(output_dir)
    checkpoint = get_last_checkpoint(str(output_dir))
    if checkpoint is None:
        return None
    missing = [f for f in (MODEL_FILE, STATE_FILE) if not (Path(checkpoint) / f).is_file()]
    if missing:
        raise IncompleteCheckpointError(
            f"checkpoint {checkpoint} is missing {missing}: it cannot be resumed from. Delete that folder to "
            f"resume from the one before it, or pass --resume_from_checkpoint with another checkpoint")
    return checkpoint


def check_resumable(checkpoint: str) -> None:
    """Refuse a checkpoint without optimizer or scheduler state: Trainer would silently restart both
    (fresh Adam moments, learning rate back at warmup), which is not resuming."""
    missing = [f for f in RESUME_FILES if not (Path(checkpoint) / f).is_file()
               and not (f == "optimizer.pt" and (Path(checkpoint) / "optimizer.bin").is_file())]
    if missing:
        raise IncompleteCheckpointError(
            f"checkpoint {checkpoint} is missing {missing}: resuming from it would restart the optimizer and the "
            f"learning-rate schedule from scratch. Resume from another checkpoint, or start a new run from its "
            f"weights (--backbone {checkpoint})")


def first_non_finite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first trainable parameter holding a NaN or infinity, if any."""
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and not bool(torch.isfinite(parameter.detach()).all()):
            return name
    return None


def describe_batch(tokenizer, input_ids, attention_mask, limit: int = 2) -> str:
    """A short description of a batch for error messages: its size and its first texts."""
    texts = []
    for ids, mask in zip(input_ids[:limit], attention_mask[:limit]):
        texts.append(repr(tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)[:80]))
    return f"{len(input_ids)} texts, starting with {', '.join(texts)}"
