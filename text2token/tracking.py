"""Send numbers that arrive after training (the evaluation table) to the trackers the run reported to.

Training already logs the KL loss and the alignment metrics through `TrainingArguments.report_to`
(Trainer's integration callbacks). The evaluation runs later, once the trainer is gone, so this module
rebuilds the same integrations from the run's saved `training_args.json` and gives them one log
entry at the run's last step: whatever `report_to` names (TensorBoard, trackio, wandb, mlflow...)
receives it the way it received the training logs, with no tracker-specific code here.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

# The TrainingArguments fields the integrations read to find (or resume) the run they log to.
_TRACKER_FIELDS = ("report_to", "run_name", "project", "trackio_space_id", "trackio_bucket_id",
                   "trackio_static_space_id", "hub_private_repo")


def reported_to(run_dir: str | Path) -> list[str]:
    """The trackers a finished run in `run_dir` logged to (its saved `report_to`); [] when none."""
    args_file = Path(run_dir) / "training_args.json"
    if not args_file.is_file():
        return []
    report_to = json.loads(args_file.read_text()).get("report_to") or []
    report_to = [report_to] if isinstance(report_to, str) else list(report_to)
    return [name for name in report_to if name != "none"]


def table_metrics(table: Mapping[str, Mapping[str, object]]) -> dict[str, float]:
    """A systems x columns table as flat `eval_<system>/<column>` scalars (the trackers' `eval/` group)."""
    return {f"eval_{system}/{column}": float(value) for system, row in table.items() for column, value in row.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def log_to_trackers(run_dir: str | Path, metrics: Mapping[str, float], step: int) -> list[str]:
    """Log `metrics` at `step` to every tracker the run in `run_dir` reported to; returns their names.
    Keys `eval_<name>` appear as `eval/<name>` (Trainer's own renaming)."""
    names = reported_to(run_dir)
    if not names or not metrics:
        return []
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.integrations import get_reporting_integration_callbacks

    saved = json.loads((Path(run_dir) / "training_args.json").read_text())
    known = {name: saved[name] for name in _TRACKER_FIELDS if name in saved}
    args = TrainingArguments(output_dir=str(run_dir), **{**known, "report_to": names})
    state, control = TrainerState(global_step=step, max_steps=step), TrainerControl()
    for callback_class in get_reporting_integration_callbacks(names):
        callback = callback_class()
        callback.on_train_begin(args, state, control)
        callback.on_log(args, state, control, logs=dict(metrics))
        callback.on_train_end(args, state, control)
    logger.info("Logged %d evaluation numbers to %s", len(metrics), ", ".join(names))
    return names


__all__ = ["log_to_trackers", "reported_to", "table_metrics"]
