"""One `report.md` per pipeline run: the settings, the loss and alignment curves of each stage (PNG),
what the embeddings decode to (`explain`), and the evaluation table. `pipeline_report` also sends the
table to the trackers the run reported to, so one call at the end of a pipeline closes the run.

Everything is read from the run's folders (each stage's run record, completion marker and last
checkpoint's `trainer_state.json`), so a report can be rebuilt for any finished run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .alignment import plot_alignment
from .files import write_atomic
from .records import flatten_record
from .run_record import read_record
from .tracking import log_to_trackers, table_metrics

logger = logging.getLogger(__name__)

REPORT_NAME = "report.md"
FIGURES_DIR = "report_figures"
# Fixed, varied texts: the same examples in every report, so reports of two runs read side by side.
EXAMPLE_TEXTS = (
    "The cat sat on the mat and watched the birds outside.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The central bank raised interest rates to slow inflation.",
)


def log_history(stage_dir: str | Path) -> list[dict]:
    """The training log of a stage: its last checkpoint's `trainer_state.json` (Trainer saves one at
    the final step), or [] when the stage kept no checkpoint."""
    states = [p / "trainer_state.json" for p in Path(stage_dir).glob("checkpoint-*")
              if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    if not states:
        return []
    last = max(states, key=lambda p: int(p.parent.name.split("-")[-1]))
    return json.loads(last.read_text()).get("log_history", [])


def _settings_table(settings: Mapping, stages: Mapping[str, Mapping]) -> str:
    """Pipeline options as a list, then each stage's recorded recipe and outcome as one Markdown table."""
    columns = list(stages)
    options = [f"- `{key}`: {_cell(_shown_path(value))}" for key, value in settings.items()]
    rows: dict[str, dict] = {}
    for name, stage in stages.items():
        record = flatten_record(read_record(stage["output_dir"]) or {})
        outcome = {k: stage.get(k) for k in ("global_step", "train_runtime_s", "first_loss", "last_loss")}
        for key, value in {**record, **{f"result.{k}": v for k, v in outcome.items()}}.items():
            rows.setdefault(key, {})[name] = value
    lines = [*options, *([""] if options else []),
             "| setting | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for key, by_stage in rows.items():
        cells = [_cell(by_stage.get(c)) for c in columns]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The source checkout the shipped recipes live in: their paths are shown relative to it.
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _shown_path(value):
    """An absolute path as the user would type it: relative to the working folder, or to the project
    for a shipped recipe; other values (and paths elsewhere) as they are."""
    if isinstance(value, (str, Path)) and str(value) and Path(value).is_absolute():
        for base in (Path.cwd(), _PROJECT_ROOT):
            try:
                return str(Path(value).relative_to(base))
            except ValueError:
                continue
    return value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _explain_section(stages: Mapping[str, Mapping], texts: Sequence[str], k: int) -> str:
    """The final model's top tokens per text, beside the first stage's when there are two."""
    from .explain import load_model, render, render_comparison
    from .explain import compare as compare_models
    from .explain import explain as explain_model

    names = list(stages)
    final = load_model(stages[names[-1]]["output_dir"])
    if len(names) > 1:
        first = load_model(stages[names[0]]["output_dir"])
        text = render_comparison(compare_models(first, final, texts, k=k), (names[0], names[-1]))
    else:
        text = render(explain_model(final, texts, k=k))
    return f"```text\n{text}\n```"


def _table_markdown(table: Mapping[str, Mapping]) -> str:
    import pandas as pd

    from .evaluation.suite import to_markdown

    frame = pd.DataFrame.from_dict(dict(table), orient="index")
    frame.index.name = "system"
    return to_markdown(frame)


def write_report(output_dir: str | Path, stages: Mapping[str, Mapping], *, table: Mapping | None = None,
                 settings: Mapping | None = None, table_png: str | Path | None = None,
                 texts: Sequence[str] = EXAMPLE_TEXTS, k: int = 8) -> Path:
    """Write `<output_dir>/report.md` (figures in `<output_dir>/report_figures/`) for `stages`
    ({name: {"output_dir": ..., "global_step": ..., ...}} in training order); returns its path."""
    output_dir = Path(output_dir)
    figures = output_dir / FIGURES_DIR
    sections = ["# Text2Token run report", "", f"Stages: {', '.join(stages)}. Output folder: `{output_dir}`.", "",
                "## Settings", "", _settings_table(settings or {}, stages), "", "## Training curves", "",
                "KL loss (left axis) and the alignment of each embedding's top tokens with the text's own "
                "content tokens on held-out texts (right axis; hit@10, local, global).", ""]
    for name, stage in stages.items():
        history = log_history(stage["output_dir"])
        if not history:
            sections += [f"{name}: no checkpoint with a training log in `{stage['output_dir']}`.", ""]
            continue
        png = plot_alignment(history, figures / f"{name}-curves.png")
        sections += [f"### {name}", "", f"![{name} curves]({png.relative_to(output_dir).as_posix()})", ""]
    sections += ["## What the embeddings decode to", "",
                 "Top tokens of `softmax(W h)` per text (`text2token explain`); `*` marks a token of the text itself.",
                 "", _explain_section(stages, texts, k), "", "## Evaluation", ""]
    if table:
        sections += [_table_markdown(table), ""]
        if table_png is not None and Path(table_png).is_file():
            sections += [f"![evaluation]({Path(os.path.relpath(table_png, output_dir)).as_posix()})", ""]
    else:
        sections += ["Not evaluated in this run.", ""]
    return write_atomic(output_dir / REPORT_NAME, "\n".join(sections))  # a reader never sees half a report


def pipeline_report(output_dir: str | Path, stages: Mapping[str, Mapping], *, table: Mapping | None = None,
                    settings: Mapping | None = None, table_png: str | Path | None = None) -> Path:
    """The end of a pipeline run: the evaluation table to the final stage's trackers (its `report_to`),
    then `report.md`. Returns the report's path."""
    final = stages[list(stages)[-1]]
    if table:
        log_to_trackers(final["output_dir"], table_metrics(table), step=int(final.get("global_step") or 0))
    path = write_report(output_dir, stages, table=table, settings=settings, table_png=table_png)
    logger.info("Run report: %s", path)
    return path


__all__ = ["EXAMPLE_TEXTS", "log_history", "pipeline_report", "write_report"]
