"""Run embedders on the offline suite with ``mteb.evaluate`` and tabulate.

Results: mteb writes its own per-task JSON under
``output_dir/mteb/results/<model>/<revision>/``; :func:`summarize` turns the
returned scores into a systems x scores table that :func:`write_table` and
:func:`plot_table` render.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mteb
import numpy as np
import pandas as pd

from ..distributed import is_main_process
from .mteb_encoder import Embedder, EmbedderEncoder
from .offline_tasks import load_offline_tasks

# Overall-average column; per-type averages are named "avg <mteb task type>".
OVERALL = "Average"


@dataclass
class SystemResult:
    """One system's main scores (0-100) keyed by task name, plus extras."""

    name: str
    scores: dict[str, float]
    task_types: dict[str, str]
    eval_wall_s: float
    extras: dict[str, Any] = field(default_factory=dict)
    model_result: Any = None  # mteb.results.ModelResult, for full metrics


def run_offline_suite(
    embedders: dict[str, Embedder],
    output_dir: str | Path,
    cache_dir: str | Path | None = None,
    tasks: list | None = None,  # task instances or offline task names
    *,
    extras: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 32,
    show_progress_bar: bool = True,
    overwrite_strategy: str = "always",
) -> list[SystemResult]:
    """Evaluate each embedder on ``tasks`` (default: the full offline suite).

    ``embedders`` maps the row label used in the table to an embedder.
    ``extras`` adds per-system columns (e.g. ``{"t2t": {"train_wall_s": 812}}``).
    ``overwrite_strategy`` is passed to mteb; "always" recomputes scores
    (cheap when ``cache_dir`` holds the embeddings) so a changed model under
    an unchanged name is never silently served stale mteb results.

    Under a multi-process launch every rank calls this with the same
    arguments: the encoding is split across ranks (see ``EmbedderEncoder``),
    every rank scores the same vectors, and only the main process writes
    mteb's result files.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result_cache = mteb.ResultCache(cache_path=output_dir / "mteb")
    results = []
    names = [e.name for e in embedders.values()]
    if len(set(names)) != len(names):
        # the embedding cache and mteb's result files are keyed by name
        raise ValueError(f"embedders must have distinct names, got {names}")
    if tasks is not None and all(isinstance(t, str) for t in tasks):
        tasks = load_offline_tasks(list(tasks))
    for label, embedder in embedders.items():
        run_tasks = tasks if tasks is not None else load_offline_tasks()
        reseed(run_tasks)
        encoder = EmbedderEncoder(embedder, cache_dir=cache_dir, show_progress_bar=show_progress_bar)
        start = time.perf_counter()
        model_result = mteb.evaluate(
            encoder,
            run_tasks,
            cache=result_cache if is_main_process() else None,  # other ranks only help encode
            overwrite_strategy=overwrite_strategy,
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress_bar},
            co2_tracker=False,
            show_progress_bar=show_progress_bar,
        )
        wall = time.perf_counter() - start
        scores, types = {}, {}
        for task_result in model_result.task_results:
            scores[task_result.task_name] = 100.0 * float(task_result.get_score())
        for task in run_tasks:
            types[task.metadata.name] = task.metadata.type
        results.append(SystemResult(
            name=label, scores=scores, task_types=types, eval_wall_s=wall,
            extras=dict((extras or {}).get(label, {})), model_result=model_result,
        ))
    return results


def reseed(tasks: list) -> None:
    """Give every task its initial random state again. mteb seeds a task's generators once, when it is
    built, and its clustering bootstrap draws from them: without this, the second system on one task
    list was scored on other k-means samples than the first (the same embeddings scored 58.6 and 60.6)."""
    for task in tasks:
        seed = getattr(task, "seed", None)
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
            task.rng_state, task.np_rng = random.Random(seed), np.random.default_rng(seed)


def summarize(results: list[SystemResult], extras: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Rows = systems; columns = each task's main score, one average per task
    type, the overall average, eval wall time, then any extra columns.

    The overall average is the mean of the type averages, so a type with more
    tasks does not dominate (as in the MTEB leaderboard's mean by task type).
    """
    task_order: list[str] = []
    type_of: dict[str, str] = {}
    for res in results:
        for task in res.scores:
            if task not in task_order:
                task_order.append(task)
        type_of.update(res.task_types)
    type_order = sorted({type_of.get(t, "Other") for t in task_order})
    rows = {}
    for res in results:
        row: dict[str, Any] = {t: res.scores.get(t) for t in task_order}
        by_type = defaultdict(list)
        for t in task_order:
            if res.scores.get(t) is not None:
                by_type[type_of.get(t, "Other")].append(res.scores[t])
        for kind in type_order:
            vals = by_type.get(kind)
            row[f"avg {kind}"] = sum(vals) / len(vals) if vals else None
        type_means = [row[f"avg {k}"] for k in type_order if row[f"avg {k}"] is not None]
        row[OVERALL] = sum(type_means) / len(type_means) if type_means else None
        row["eval_wall_s"] = res.eval_wall_s
        row.update(res.extras)
        row.update((extras or {}).get(res.name, {}))
        rows[res.name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "system"
    return table


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    headers = [table.index.name or "system", *map(str, table.columns)]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * len(table.columns)) + "|"]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name), *(_fmt(v) for v in row.tolist())]) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, output_dir: str | Path, stem: str = "summary") -> tuple[Path, Path]:
    """Write ``<stem>.json`` (records keyed by system) and ``<stem>.md``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    records = json.loads(table.to_json(orient="index"))  # NaN -> null
    json_path, md_path = output_dir / f"{stem}.json", output_dir / f"{stem}.md"
    json_path.write_text(json.dumps(records, indent=1, default=str) + "\n")
    md_path.write_text(to_markdown(table))
    return json_path, md_path


def plot_table(table: pd.DataFrame, png_path: str | Path) -> Path:
    """Grouped bar chart: one group per task (plus the overall average), one bar per system."""
    score_cols = _score_columns(table)  # extras such as wall times stay out of the chart
    return bar_chart(table[score_cols], png_path, "main score (x100)",
                     [str(c).removeprefix("Offline") for c in score_cols])


def bar_chart(values: pd.DataFrame, png_path: str | Path, ylabel: str, tick_labels: list[str],
              errors: pd.DataFrame | None = None) -> Path:
    """One group of bars per column of `values`, one bar per row (system), optional ±`errors` bars."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    columns, systems = list(values.columns), list(values.index)
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(columns)), 4.2))
    for i, system in enumerate(systems):
        xs = [j + i * width for j in range(len(columns))]
        yerr = None if errors is None else [errors.loc[system, c] for c in columns]
        ax.bar(xs, [values.loc[system, c] for c in columns], width, yerr=yerr, capsize=2, label=str(system))
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(columns))])
    ax.set_xticklabels(tick_labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", ncol=2 if len(systems) > 4 else 1)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


def _score_columns(table: pd.DataFrame) -> list[str]:
    """Task columns and the overall average: everything before the type averages."""
    cols = list(table.columns)
    first_avg = next((i for i, c in enumerate(cols) if str(c).startswith("avg ")), len(cols))
    return cols[:first_avg] + ([OVERALL] if OVERALL in cols else [])
