"""The paper's two-stage recipe in one command, resumable stage by stage, ending with a table:

    text2token pipeline [--stage1 YAML] [--stage2 YAML] [--steps N] [--skip_eval]
    accelerate launch recipes/pipeline.py ...          (the same command)

stage-1 targets -> stage 1 -> merge -> model-derived targets -> stage 2 (fresh LoRA) -> save ->
offline evaluation of the final model beside the untrained backbone -> report.md.
Each stage is `text2token train` with its YAML; a stage whose output holds `training_complete.json`
is skipped, and an interrupted one resumes from its last checkpoint. Stage 2 records the digest of
the stage-1 weights it started from: when stage 1 is retrained, stage 2 is retrained too.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..command_line import OneLineParser
from ..digests import weights_digest
from ..distributed import barrier, is_main_process, join_process_group
from ..hub import update_model_card_scores
from ..records import refuse_differences
from ..report import pipeline_report
from ..run_record import RUN_RECORD, recipe_record
from . import evaluate as evaluate_command
from ..output_folder import check_output_folder
from .train import COMPLETE_MARKER, output_folder_rules, parse_args, train

logger = logging.getLogger("text2token.pipeline")
# The recipes shipped beside the package in a source checkout (recipes/ is not installed with a wheel).
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
MAIN_RECIPES = RECIPES / "smollm2-135m"  # the main job's, on the embedded default


def clear_stale_stage(output_dir: Path, marker_name: str, started_from: str) -> None:
    """A stage trained (or begun) from other starting weights than `started_from` is stale: drop its
    completion marker, checkpoints and run record so it retrains (its targets rebuild by their spec)."""
    marker = output_dir / marker_name
    recorded = [json.loads(path.read_text()).get("backbone_digest") for path in (marker, output_dir / RUN_RECORD)
                if path.is_file()]
    if not recorded or all(digest == started_from for digest in recorded):
        return
    logger.warning("%s was trained from other starting weights (digest %s, now %s): retraining it",
                   output_dir, recorded[0], started_from)
    for checkpoint in output_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    for path in (marker, output_dir / RUN_RECORD):
        path.unlink(missing_ok=True)


def check_finished_recipe(marker: Path, wanted: dict) -> None:
    """A complete stage is reused only for the recipe that trained it: refuse, naming the fields, when
    the recipe asks for something else (a newer shipped recipe, a changed flag), rather than serve old
    weights under the new recipe's name."""
    finished = json.loads(marker.read_text())
    stored = finished.get("recipe")
    if stored is None:  # finished before completion markers recorded their recipe: its step count still tells
        steps = wanted["training"].get("max_steps")
        if steps and steps > 0 and finished.get("global_step") not in (None, steps):
            raise ValueError(f"{marker.parent} is complete after {finished['global_step']} steps, but this recipe "
                             f"asks for {steps}. Use another output folder (--output_root), or delete this one to "
                             f"retrain it")
        logger.warning("%s does not record the recipe it was trained with: reusing it as it is", marker.parent)
        return
    refuse_differences(stored, wanted, f"{marker.parent} is complete, but was trained", "recipe",
                       "Use another output folder (--output_root), or delete this one to retrain it")


def run_stage(config: Path, flags: list[str] = (), overrides: dict | None = None, started_from: str | None = None,
              train_fn: Callable = train) -> dict:
    """Run one stage (YAML `config`, the user's extra `flags`, then `overrides`) unless it is complete.
    `started_from`: the digest of the weights it must start from (stage 2: stage 1's), so a stage begun
    from other weights is retrained. Returns the completion marker's summary with the output folder
    and the backbone the stage started from."""
    model_args, data_args, training_args = parse_args(["--config", str(config), *flags], overrides=overrides)
    output_dir = Path(training_args.output_dir)
    marker = output_dir / COMPLETE_MARKER
    # Before a stale stage's checkpoints are cleared: never in a folder of the user's or of an input.
    check_output_folder(output_dir, **output_folder_rules(model_args, data_args, training_args))
    if started_from is not None:
        if is_main_process():  # one rank deletes; every rank then sees the same folder
            clear_stale_stage(output_dir, COMPLETE_MARKER, started_from)
        barrier()
    if marker.is_file():
        check_finished_recipe(marker, recipe_record(model_args, data_args, training_args))
        logger.info("%s is complete (%s): skipping", output_dir, marker.name)
    else:
        train_fn(model_args, data_args, training_args)
    return {"output_dir": str(output_dir), "backbone": model_args.backbone, **json.loads(marker.read_text())}


@dataclass
class PipelineOptions:
    """What `text2token pipeline` runs; each field's default is the command line's."""

    stage1: Path = MAIN_RECIPES / "stage1.yaml"
    stage2: Path = MAIN_RECIPES / "stage2.yaml"
    output_root: Path | None = None  # stage1/ and stage2/ here instead of the YAMLs' output_dir
    steps: int | None = None  # max_steps of each stage (overrides the YAMLs)
    stage1_args: str = ""  # extra `text2token train` flags for stage 1, quoted
    stage2_args: str = ""
    skip_eval: bool = False
    eval_quick: int = 100  # cap each offline task at N rows in the closing table (0: the full suite)
    eval_stage1: bool = False
    eval_max_length: int | None = None  # None: the stage-2 model's inference length (config.encode_length)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="text2token pipeline", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", type=Path)
    parser.add_argument("--stage2", type=Path)
    parser.add_argument("--output_root", type=Path,
                        help="put stage1/ and stage2/ here instead of the YAMLs' output_dir")
    parser.add_argument("--steps", type=int, help="max_steps of each stage (overrides the YAMLs)")
    parser.add_argument("--stage1_args", help="extra `text2token train` flags for stage 1, quoted")
    parser.add_argument("--stage2_args", help="extra `text2token train` flags for stage 2, quoted")
    parser.add_argument("--skip_eval", action="store_true", help="stop after training")
    parser.add_argument("--eval_quick", type=int, metavar="N",
                        help="cap each offline task at N rows in the closing table (0: the full suite)")
    parser.add_argument("--eval_stage1", action="store_true", help="also score the stage-1 model")
    parser.add_argument("--eval_max_length", type=int,
                        help="tokens per text for every system of the closing table (default: the stage-2 "
                             "model's inference length, config.encode_length)")
    parser.set_defaults(**asdict(PipelineOptions()))
    return parser


def main(argv: list[str] | None = None) -> dict:
    return run_pipeline(PipelineOptions(**vars(build_parser().parse_args(argv))))


def run_pipeline(args: PipelineOptions) -> dict:
    """Both stages, then the closing table and report.md (see the module docstring)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    join_process_group()  # under accelerate launch: before a stage is skipped or run, every rank joins
    common = {"max_steps": args.steps} if args.steps else {}
    started = time.time()
    overrides1 = {**common, **({"output_dir": str(args.output_root / "stage1")} if args.output_root else {})}
    overrides2 = {**common, **({"output_dir": str(args.output_root / "stage2")} if args.output_root else {})}
    # Every value of both stages is checked before stage 1 starts, not once stage 1 has trained.
    stage1_output = parse_args(["--config", str(args.stage1), *args.stage1_args.split()], overrides=overrides1)[2].output_dir
    parse_args(["--config", str(args.stage2), *args.stage2_args.split()], overrides={**overrides2, "backbone": stage1_output})
    stage1 = run_stage(args.stage1, args.stage1_args.split(), overrides1)
    # Stage 2 always starts from this run's stage-1 model, whatever its YAML says.
    stage2 = run_stage(args.stage2, args.stage2_args.split(), {**overrides2, "backbone": stage1["output_dir"]},
                       started_from=weights_digest(stage1["output_dir"]))
    summary = {"stage1": stage1, "stage2": stage2, "train_wall_s": round(time.time() - started, 1)}
    table = None
    if not args.skip_eval:  # every rank encodes its share of the closing table
        table = evaluate_stages(stage1, stage2, args)
        summary["table"] = table.to_dict(orient="index")
    if not is_main_process():  # under a multi-process launch, the card and the report are the main process's
        return summary
    if table is not None:
        write_final_card(stage2["output_dir"], table, args.eval_quick)
    summary["pipeline_wall_s"] = round(time.time() - started, 1)
    # The table to the trackers of stage 2's report_to, then report.md beside the stage folders.
    root = Path(stage2["output_dir"]).parent
    summary["report"] = str(pipeline_report(root, {"stage1": stage1, "stage2": stage2}, table=summary.get("table"),
                                            settings=asdict(args), table_png=root / "eval" / "summary.png"))
    logger.info("Pipeline done in %.0f s", summary["pipeline_wall_s"])
    return summary


def card_scores(table, system: str = "text2token-stage2", baseline: str = "untrained",
                quick: int | None = None) -> list[dict]:
    """The closing table's row of `system` as model-card score rows: each task's type, main metric,
    score, the cut it was scored on and the `baseline` row's score beside it."""
    from ..evaluation.offline_tasks import OFFLINE_TASKS

    tasks = {cls.metadata.name: cls.metadata for cls in OFFLINE_TASKS}
    row, base = table.loc[system], table.loc[baseline] if baseline in table.index else None
    return [{"task": name, "type": meta.type, "metric": meta.main_score, "value": round(float(row[name]), 2),
             "cut": f"quick-{quick}" if quick else "full",
             "baseline": round(float(base[name]), 2) if base is not None and base.get(name) == base.get(name) else None}
            for name, meta in tasks.items() if name in table.columns and row[name] == row[name]]  # NaN: not scored


def write_final_card(stage_dir: str, table, quick: int | None) -> None:
    """Put the closing table's scores into the final model's card (model-index, Evaluation, Limitations)."""
    try:
        path = update_model_card_scores(stage_dir, card_scores(table, quick=quick))
    except (FileNotFoundError, ValueError) as exc:  # a card saved before the card had score sections
        logger.warning("the scores were not written into %s's model card: %s", stage_dir, exc)
    else:
        logger.info("Wrote the closing table's scores into %s", path)


def evaluate_stages(stage1: dict, stage2: dict, args: PipelineOptions):
    """Score the final model beside the untrained backbone stage 1 started from (and stage 1 on request)."""
    train_s = {"text2token-stage1": stage1["train_runtime_s"],
               "text2token-stage2": stage1["train_runtime_s"] + stage2["train_runtime_s"]}
    models = [("text2token-stage2", stage2["output_dir"])]
    if args.eval_stage1:
        models.append(("text2token-stage1", stage1["output_dir"]))
    return evaluate_command.evaluate(
        models, baselines=["untrained"], backbone=stage1["backbone"], quick=args.eval_quick or None,
        max_length=args.eval_max_length, output_dir=str(Path(stage2["output_dir"]).parent / "eval"),
        extras={label: {"train_wall_s": round(s, 1)} for label, s in train_s.items()})
