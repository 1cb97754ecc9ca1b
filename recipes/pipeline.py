"""The paper's two-stage recipe in one command, resumable stage by stage:

    accelerate launch recipes/pipeline.py [--stage1 YAML] [--stage2 YAML] [--steps N] [--skip-eval]

stage-1 targets -> stage 1 -> merge -> model-derived targets -> stage 2 (fresh LoRA) -> save.
Each stage is `recipes/train.py` with its YAML; a stage whose output holds `training_complete.json`
is skipped, and an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("text2token.pipeline")


def _train_module():
    spec = importlib.util.spec_from_file_location("text2token_recipe_train", HERE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_stage(train, config: Path, overrides: list[str]) -> dict:
    output_dir = Path(yaml.safe_load(config.read_text())["output_dir"])
    for i, flag in enumerate(overrides):  # a command-line output_dir wins over the YAML's
        if flag == "--output_dir":
            output_dir = Path(overrides[i + 1])
    marker = output_dir / train.COMPLETE_MARKER
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
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)

    train = _train_module()
    common = ["--max_steps", str(args.steps)] if args.steps else []
    stage1_flags = common + args.stage1_args.split()
    stage2_flags = common + args.stage2_args.split()
    if args.output_root:
        stage1_flags += ["--output_dir", str(args.output_root / "stage1")]
        stage2_flags += ["--output_dir", str(args.output_root / "stage2")]
    started = time.time()
    stage1 = run_stage(train, args.stage1, stage1_flags)
    # Stage 2 always starts from this run's stage-1 model, whatever its YAML says.
    stage2 = run_stage(train, args.stage2, stage2_flags + ["--backbone", stage1["output_dir"]])
    summary = {"stage1": stage1, "stage2": stage2, "pipeline_wall_s": round(time.time() - started, 1)}
    logger.info("Pipeline done: %s", json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
