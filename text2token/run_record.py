"""What a training run in an output folder was started with, so a resume cannot silently change it.

`text2token_run.json` beside the checkpoints records the targets' spec key and the recipe fields that
shape the trained weights (not `max_steps`: extending a run is a resume). Resuming from a checkpoint
with a different record is refused, naming each differing field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .backbones import portable_backbone_name
from .files import write_atomic
from .records import refuse_differences

RUN_RECORD = "text2token_run.json"
MODEL_FIELDS = ("backbone", "pooling", "attention", "prompt", "max_length", "lora_r", "lora_alpha", "lora_dropout",
                "lora_target_modules", "dtype")
TRAINING_FIELDS = ("loss", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                   "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay", "seed", "simcse_temperature",
                   "simcse_attention_dropout", "simcse_hidden_dropout", "mntp_probability", "mntp_mask_token",
                   "merge_lora_on_save")
SIMCSE_DATA_FIELDS = ("corpus", "corpus_split", "max_train_samples", "text_column")


def _plain(value):
    value = getattr(value, "value", value)  # enums (lr_scheduler_type)
    return list(value) if isinstance(value, tuple) else value


def _fields(args, names: tuple[str, ...]) -> dict:
    return {name: _plain(getattr(args, name)) for name in names if hasattr(args, name)}


def run_record(model_args, data_args, training_args, *, targets_key: str | None, backbone_digest: str = "") -> dict:
    """The record of a run: model and training fields, the targets' spec key (token targets) or the
    corpus fields (SimCSE, MNTP), and the digest of the starting weights when they are a local folder."""
    model = {**_fields(model_args, MODEL_FIELDS), "backbone": portable_backbone_name(model_args.backbone)}
    record = {"model": model, "training": _fields(training_args, TRAINING_FIELDS), "backbone_digest": backbone_digest}
    if getattr(training_args, "loss", "token_targets") != "token_targets":  # SimCSE, MNTP: plain text
        record["data"] = _fields(data_args, SIMCSE_DATA_FIELDS)
    else:
        record["targets_key"] = targets_key
    return record


# What a finished stage was trained with beyond its run record: the data that shaped its targets or
# texts, and how long it trained. Stored in the completion marker, so a complete stage is reused only
# for the recipe that made it.
DATA_FIELDS = ("corpus", "corpus_data_files", "corpus_split", "text_column", "max_train_samples", "targets",
               "target_method", "weighting", "stopwords", "target_top_k", "target_temperature")


def recipe_record(model_args, data_args, training_args) -> dict:
    """The fields of a recipe that shape a finished stage's weights (the starting weights apart: the
    pipeline checks those by digest)."""
    model = _fields(model_args, tuple(name for name in MODEL_FIELDS if name != "backbone"))
    training = {**_fields(training_args, TRAINING_FIELDS), "max_steps": training_args.max_steps}
    return {"model": model, "training": training, "data": _fields(data_args, DATA_FIELDS)}


def read_record(output_dir: str | os.PathLike) -> dict | None:
    path = Path(output_dir) / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def check_resume(output_dir: str | os.PathLike, record: dict, *, checkpoint: str | None,
                 write: bool = True) -> None:
    """Refuse to resume from `checkpoint` when `output_dir`'s record differs from `record`, naming the
    fields; otherwise (a fresh run, or a matching one) write `record` there (atomically) if `write`."""
    stored = read_record(output_dir)
    if checkpoint and stored is not None:
        refuse_differences(stored, record, f"{output_dir} holds {Path(checkpoint).name}, trained", "run",
                           "Resume with the settings it was started with, or train in a new output_dir")
    if write:
        write_atomic(Path(output_dir) / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True))
