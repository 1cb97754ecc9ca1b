"""Seeds of one system pooled into mean ± standard deviation, and which differences the spread can't tell.

A trained system run with several seeds appears in the raw table once per seed (label
``<system>@seed<N>``); :func:`pool_seeds` folds those rows into one row per system. A difference
between two systems counts only when it is larger than their spread: ``|mean_a - mean_b| <=
std_a + std_b`` is marked as inside it. Single-run systems (TF-IDF, MiniLM, the untrained backbone)
have no training seed, so their own spread is 0 and only the other system's spread counts; the
evaluation's own noise (k-means, the classifier) is therefore not in their rows.

Where seeds are too dear (the whole suite on a CPU), one seed can be scored and each system's
spread borrowed from a several-seed run on a cut of the suite (:func:`borrow_spread`): its cells
then say so (``± s†``), and the marks use the borrowed spread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .suite import OVERALL, _fmt, _score_columns, bar_chart

SEED_MARK = "@seed"
INSIDE_SPREAD = "≈"  # beside a cell whose difference from the reference row is not larger than the spread
BORROWED = "†"  # beside a standard deviation taken from another run's seeds.json
SPREAD_AXIS = "main score (x100), mean ± std over seeds"


def seed_label(system: str, seed: int) -> str:
    return f"{system}{SEED_MARK}{seed}"


def system_of(label: str) -> str:
    return label.split(SEED_MARK, 1)[0]


def score_columns(table: pd.DataFrame) -> list[str]:
    """Per-task scores, per-type averages and the overall average: the columns seeds are pooled over."""
    return [c for c in table.columns if c in _score_columns(table) or str(c).startswith("avg ")]


def pool_seeds(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(mean, std, runs) per system, in the order systems first appear. std is the sample standard
    deviation over seeds (ddof=1); 0 for a system with one run."""
    columns = score_columns(table)
    systems = list(dict.fromkeys(system_of(label) for label in table.index))
    groups = {s: [label for label in table.index if system_of(label) == s] for s in systems}
    scores = table[columns].astype(float)
    mean = pd.DataFrame({s: scores.loc[labels].mean() for s, labels in groups.items()}).T
    std = pd.DataFrame({s: scores.loc[labels].std(ddof=1) if len(labels) > 1 else scores.loc[labels[0]] * 0.0
                        for s, labels in groups.items()}).T
    runs = pd.Series({s: len(labels) for s, labels in groups.items()}, name="seeds")
    for frame in (mean, std):
        frame.index.name = "system"
    return mean, std, runs


def borrow_spread(std: pd.DataFrame, runs: pd.Series, seeds_json: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """`std` with each single-run system's row replaced by its standard deviation in `seeds_json`
    (written by :func:`write_spread` for a run with several seeds), where that run had several.
    Returns (std, the systems whose spread was borrowed)."""
    path = Path(seeds_json)
    try:
        source = json.loads(path.read_text())["systems"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a seeds.json written by `text2token compare` ({exc})") from None
    std, borrowed = std.copy(), []
    for system in std.index:
        measured = source.get(system, {})
        if runs[system] > 1 or measured.get("seeds", 0) < 2:
            continue
        values = pd.Series({c: measured["std"].get(str(c)) for c in std.columns}, dtype=float)
        std.loc[system] = values.fillna(0.0).values
        borrowed.append(system)
    return std, borrowed


def inside_spread(mean: pd.DataFrame, std: pd.DataFrame, reference: str) -> pd.DataFrame:
    """True where a system's difference from `reference` in that column is not larger than the sum of
    their standard deviations (the reference's own row is False)."""
    if reference not in mean.index:
        raise KeyError(f"reference system {reference!r} is not in the table ({', '.join(mean.index)})")
    gap = (mean - mean.loc[reference]).abs()
    spread = std + std.loc[reference]
    marks = gap <= spread
    marks.loc[reference] = False
    return marks


def spread_markdown(mean: pd.DataFrame, std: pd.DataFrame, runs: pd.Series, reference: str,
                    extras: pd.DataFrame | None = None, borrowed: tuple[str, ...] = (),
                    borrowed_from: str = "") -> str:
    """Markdown: "mean ± std" per cell (± only for seeded systems, or † for a spread borrowed from
    `borrowed_from`), ≈ where the difference from the reference row is inside the spread, then the
    seed count and any extra columns (e.g. wall times)."""
    marks = inside_spread(mean, std, reference)
    extra_cols = list(extras.columns) if extras is not None else []
    headers = ["system", *map(str, mean.columns), "seeds", *extra_cols]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(headers) - 1)) + "|"]
    for system in mean.index:
        cells = []
        for column in mean.columns:
            value = mean.loc[system, column]
            cell = _fmt(float(value)) if pd.notna(value) else "-"
            if (runs[system] > 1 or system in borrowed) and pd.notna(value):
                cell += f" ± {std.loc[system, column]:.2f}" + (BORROWED if system in borrowed else "")
            if marks.loc[system, column]:
                cell += f" {INSIDE_SPREAD}"
            cells.append(cell)
        extra = [_fmt(extras.loc[system, c]) if extras is not None and system in extras.index else "-"
                 for c in extra_cols]
        name = f"**{system}**" if system == reference else system
        lines.append("| " + " | ".join([name, *cells, str(int(runs[system])), *extra]) + " |")
    lines.append("")
    lines.append(f"{INSIDE_SPREAD}: the difference from **{reference}** in that column is not larger than the sum "
                 "of the two systems' standard deviations over seeds, so the table cannot tell them apart.")
    if borrowed:
        lines.append(f"{BORROWED}: one seed scored here; the standard deviation is the one measured over seeds in "
                     f"{borrowed_from}, borrowed for the marks.")
    return "\n".join(lines) + "\n"


def plot_spread(mean: pd.DataFrame, std: pd.DataFrame, png_path: str | Path,
                label: str = SPREAD_AXIS) -> Path:
    """Bars of each system's per-type and overall averages, with ±1 std error bars over seeds."""
    columns = [c for c in mean.columns if str(c).startswith("avg ")] + ([OVERALL] if OVERALL in mean.columns else [])
    return bar_chart(mean[columns], png_path, label, [str(c).removeprefix("avg ") for c in columns],
                     errors=std[columns])


def write_spread(table: pd.DataFrame, output_dir: str | Path, reference: str,
                 extra_columns: tuple[str, ...] = ("train_wall_s", "max_tokens"),
                 spread_from: str | Path | None = None) -> dict[str, Any]:
    """Pool `table`'s seeds and write seeds.md, seeds.json and seeds.png to `output_dir`; with
    `spread_from` (an earlier seeds.json), single-run systems borrow their spread from it."""
    mean, std, runs = pool_seeds(table)
    borrowed: list[str] = []
    if spread_from is not None:
        std, borrowed = borrow_spread(std, runs, spread_from)
    extras = None
    present = [c for c in extra_columns if c in table.columns]
    if present:
        per_system = table[present].copy()
        per_system.index = [system_of(label) for label in per_system.index]
        extras = per_system.apply(pd.to_numeric, errors="coerce").groupby(level=0, sort=False).mean()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = spread_markdown(mean, std, runs, reference, extras, tuple(borrowed), str(spread_from or ""))
    (output_dir / "seeds.md").write_text(markdown)
    marks = inside_spread(mean, std, reference)
    record = {system: {"seeds": int(runs[system]),
                       "mean": {c: _none(mean.loc[system, c]) for c in mean.columns},
                       "std": {c: _none(std.loc[system, c]) for c in std.columns},
                       **({"std_borrowed_from": str(spread_from)} if system in borrowed else {}),
                       "inside_spread_of_reference": [c for c in marks.columns if marks.loc[system, c]]}
              for system in mean.index}
    (output_dir / "seeds.json").write_text(json.dumps({"reference": reference, "systems": record}, indent=1) + "\n")
    label = (f"main score (x100), one seed;\nerror bars: std over seeds\nin {Path(spread_from).name}"
             if borrowed else SPREAD_AXIS)
    plot_spread(mean, std, output_dir / "seeds.png", label)
    return {"markdown": markdown, "mean": mean, "std": std, "runs": runs, "borrowed": borrowed}


def _none(value) -> float | None:
    return None if pd.isna(value) else round(float(value), 4)
