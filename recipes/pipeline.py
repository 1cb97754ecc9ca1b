"""The paper's two-stage recipe in one command, resumable stage by stage, ending with a table:

    accelerate launch recipes/pipeline.py [--stage1 YAML] [--stage2 YAML] [--steps N] [--skip_eval]

stage-1 targets -> stage 1 -> merge -> model-derived targets -> stage 2 (fresh LoRA) -> save ->
offline evaluation of the final model beside the untrained backbone.
Each stage is `recipes/train.py` with its YAML; a stage whose output holds `training_complete.json`
is skipped, and an interrupted one resumes from its last checkpoint. Stage 2 records the digest of
the stage-1 weights it started from: when stage 1 is retrained, stage 2 is retrained too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from text2token.backbones import weights_digest
from text2token.distributed import barrier, is_main_process, join_process_group
from text2token.report import pipeline_report
from text2token.run_record import RUN_RECORD

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("text2token.pipeline")


def load_recipe(name: str):
    """Import a sibling recipe script (recipes/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"text2token_recipe_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flag_value(flags: str, name: str) -> str | None:
    """The value given to `name` in a quoted string of extra flags, if any."""
    words = flags.split()
    return words[words.index(name) + 1] if name in words else None


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


def run_stage(train, config: Path, overrides: list[str], started_from: str | None = None) -> dict:
    """Run one stage unless it is complete; `started_from`: the digest of the weights it must start
    from (stage 2: stage 1's), so a stage begun from other weights is retrained."""
    output_dir = Path(yaml.safe_load(config.read_text())["output_dir"])
    for i, flag in enumerate(overrides):  # a command-line output_dir wins over the YAML's
        if flag == "--output_dir":
            output_dir = Path(overrides[i + 1])
    marker = output_dir / train.COMPLETE_MARKER
    if started_from is not None:
        if is_main_process():  # one rank deletes; every rank then sees the same folder
            clear_stale_stage(output_dir, train.COMPLETE_MARKER, started_from)
        barrier()
    if marker.is_file():
        logger.info("%s is complete (%s): skipping", output_dir, marker.name)
    else:
        train.main(["--config", str(config), *overrides])
    return {"output_dir": str(output_dir), **json.loads(marker.read_text())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", type=Path, default=HERE / "smollm2-135m" / "stage1.yaml")
    parser.add_argument("--stage2", type=Path, default=HERE / "smollm2-135m" / "stage2.yaml")
    parser.add_argument("--output_root", type=Path, default=None,
                        help="put stage1/ and stage2/ here instead of the YAMLs' output_dir")
    parser.add_argument("--steps", type=int, default=None, help="max_steps of each stage (overrides the YAMLs)")
    parser.add_argument("--stage1_args", default="", help="extra train.py flags for stage 1, quoted")
    parser.add_argument("--stage2_args", default="", help="extra train.py flags for stage 2, quoted")
    parser.add_argument("--skip_eval", action="store_true", help="stop after training")
    parser.add_argument("--eval_quick", type=int, default=100, metavar="N",
                        help="cap each offline task at N rows in the closing table (0: the full suite)")
    parser.add_argument("--eval_stage1", action="store_true", help="also score the stage-1 model")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)

    join_process_group()  # under accelerate launch: before a stage is skipped or run, every rank joins
    train = load_recipe("train")
    common = ["--max_steps", str(args.steps)] if args.steps else []
    stage1_flags = common + args.stage1_args.split()
    stage2_flags = common + args.stage2_args.split()
    if args.output_root:
        stage1_flags += ["--output_dir", str(args.output_root / "stage1")]
        stage2_flags += ["--output_dir", str(args.output_root / "stage2")]
    started = time.time()
    stage1 = run_stage(train, args.stage1, stage1_flags)
    # Stage 2 always starts from this run's stage-1 model, whatever its YAML says.
    stage2 = run_stage(train, args.stage2, stage2_flags + ["--backbone", stage1["output_dir"]],
                       started_from=weights_digest(stage1["output_dir"]))
    summary = {"stage1": stage1, "stage2": stage2, "train_wall_s": round(time.time() - started, 1)}
    if not is_main_process():  # under a multi-process launch, evaluation and the report are the main's
        return summary
    if not args.skip_eval:
        summary["table"] = evaluate(stage1, stage2, args).to_dict(orient="index")
    summary["pipeline_wall_s"] = round(time.time() - started, 1)
    # The table to the trackers of stage 2's report_to, then report.md beside the stage folders.
    root = Path(stage2["output_dir"]).parent
    summary["report"] = str(pipeline_report(root, {"stage1": stage1, "stage2": stage2}, table=summary.get("table"),
                                            settings=vars(args), table_png=root / "eval" / "summary.png"))
    logger.info("Pipeline done in %.0f s", summary["pipeline_wall_s"])
    return summary


def evaluate(stage1: dict, stage2: dict, args):
    """Score the final model beside the untrained backbone (and stage 1 on request)."""
    train_s = {"text2token-stage1": stage1["train_runtime_s"],
               "text2token-stage2": stage1["train_runtime_s"] + stage2["train_runtime_s"]}
    argv = ["--model", stage2["output_dir"], "--label", "text2token-stage2", "--baselines", "untrained",
            "--output_dir", str(Path(stage2["output_dir"]).parent / "eval")]
    if args.eval_stage1:
        argv += ["--model", stage1["output_dir"], "--label", "text2token-stage1"]
    if args.eval_quick:
        argv += ["--quick", str(args.eval_quick)]
    # The untrained baseline is stage 1's backbone, as the YAML or its command-line override names it.
    backbone = flag_value(args.stage1_args, "--backbone") or yaml.safe_load(args.stage1.read_text()).get("backbone")
    if backbone:
        argv += ["--backbone", backbone]
    extras = {label: {"train_wall_s": round(s, 1)} for label, s in train_s.items()}
    argv += ["--extras", json.dumps(extras)]
    return load_recipe("evaluate").main(argv)


if __name__ == "__main__":
    main()
