"""Checkpoint selection as the authors ran it: score every saved checkpoint of a run on one named
development task and publish the best (their `aa_gene_test.py` and `*_test.sh` loops keep the best of
checkpoints 10-100 on SciFact; offline, any task of the suite, e.g. OfflineLeeSTS).

The published folder holds the chosen checkpoint's model (its LoRA merged), its tokenizer and
`checkpoint_selection.json`: the task, every checkpoint's score, which one won and why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..devices import AUTO_DTYPE
from ..distributed import barrier, is_main_process
from .suite import run_offline_suite
from .systems import load_system

logger = logging.getLogger(__name__)

SELECTION_FILE = "checkpoint_selection.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def saved_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's `checkpoint-N` folders that hold a model, by step."""
    run_dir = Path(run_dir)
    found = [(int(m.group(1)), path) for path in run_dir.iterdir() if path.is_dir()
             and (m := _CHECKPOINT.match(path.name)) and (path / "config.json").is_file()]
    if not found:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint-N folder with a saved model: train with save_steps "
                                f"(and save_total_limit large enough to keep the checkpoints to choose from)")
    return [path for _, path in sorted(found)]


def _tasks(task: str, quick: int | None) -> list:
    from .offline_tasks import OFFLINE_TASKS, load_offline_tasks

    if task in {cls.metadata.name for cls in OFFLINE_TASKS}:
        return load_offline_tasks([task], max_rows=quick)
    import mteb  # a Hub task such as SciFact, the paper's choice (its data needs the Hub)

    return list(mteb.get_tasks(tasks=[task]))


def select_checkpoint(run_dir: str | os.PathLike, task: str, output: str | os.PathLike, *,
                      max_length: int | None = None, quick: int | None = None, batch_size: int = 32,
                      cache_dir: str | None = None, dtype: str | None = AUTO_DTYPE, cpu: bool = False) -> dict:
    """Score each checkpoint of `run_dir` on `task` (main score, at `max_length` tokens: default each
    checkpoint's own inference length) and publish the best into `output` (a new or empty folder).
    Under a multi-process launch every rank calls this and encodes its share; the main process publishes.
    Returns the selection record."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise FileExistsError(f"{output} exists and is not an empty folder: the selection publishes into a new one")
    checkpoints = saved_checkpoints(run_dir)
    systems = {path.name: load_system(str(path), max_length=max_length, dtype=dtype, allow_cpu=cpu)
               for path in checkpoints}
    work = Path(run_dir) / "checkpoint-selection"
    results = run_offline_suite(systems, work, cache_dir=cache_dir or str(work / "embeddings"),
                                tasks=_tasks(task, quick), batch_size=batch_size, show_progress_bar=False)
    scores = {result.name: result.scores[task] for result in results}
    best = max(scores, key=lambda name: (scores[name], -checkpoints.index(Path(run_dir) / name)))
    record = {"task": task, "rows_per_table": quick, "max_tokens": systems[best].max_length,
              "scores": scores, "selected": best,
              "why": f"highest main score on {task} ({scores[best]:.2f}) of {len(scores)} checkpoints"
                     + (" (the earliest of those tied)" if list(scores.values()).count(scores[best]) > 1 else "")}
    if is_main_process():  # reloaded: the scored copy may have been cast to bf16 for encoding
        from ..modeling import Text2TokenModel

        _publish(Text2TokenModel.from_pretrained(Path(run_dir) / best), output, record)
    barrier()
    logger.info("Selected %s: %s", best, record["why"])
    return record


def _publish(model, output: Path, record: dict) -> None:
    """Write the model (LoRA merged), its tokenizer and the record into a staging folder beside
    `output`, then rename it into place: the folder appears whole or not at all."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        model.save_pretrained(staging, merge_lora=True)
        model.tokenizer.save_pretrained(staging)  # loaded lazily: save_pretrained saves it only once loaded
        (staging / SELECTION_FILE).write_text(json.dumps(record, indent=1) + "\n")
        if output.exists():
            output.rmdir()  # empty: checked above
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
