"""The full comparison: Text2Token (stage 1, stage 2) against the untrained backbone, unsupervised
SimCSE trained with the same settings, TF-IDF and all-MiniLM-L6-v2, on the whole offline suite.

    accelerate launch recipes/compare.py [--output_root outputs/smollm2-135m] [--steps N]

Runs (or reuses, when complete) the two-stage pipeline and a SimCSE run with stage 1's YAML and
step count, then prints one table (systems x tasks, category and overall averages, train wall time)
and writes it as JSON, Markdown and a bar chart PNG under <output_root>/compare/. Embeddings are
cached, so a rerun only re-scores.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_pipeline():
    """recipes/ is a folder of scripts, not a package: load pipeline.py, whose load_recipe loads the rest."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("text2token_recipe_pipeline", HERE / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", type=Path, default=HERE / "smollm2-135m" / "stage1.yaml")
    parser.add_argument("--stage2", type=Path, default=HERE / "smollm2-135m" / "stage2.yaml")
    parser.add_argument("--simcse", type=Path, default=HERE / "smollm2-135m" / "simcse.yaml")
    parser.add_argument("--output_root", type=Path, default=Path("outputs/smollm2-135m"))
    parser.add_argument("--steps", type=int, default=None, help="max_steps of every training run")
    parser.add_argument("--extra_args", default="", help="train.py flags added to every run, quoted")
    parser.add_argument("--quick", type=int, default=None, metavar="N", help="cap each task at N rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)

    pipeline = _load_pipeline()
    steps = ["--steps", str(args.steps)] if args.steps else []
    trained = pipeline.main(["--stage1", str(args.stage1), "--stage2", str(args.stage2), "--output_root",
                             str(args.output_root), "--stage1_args", args.extra_args, "--stage2_args",
                             args.extra_args, "--skip_eval", *steps])
    simcse_flags = args.extra_args.split() + ["--output_dir", str(args.output_root / "simcse")]
    simcse_flags += ["--max_steps", str(args.steps)] if args.steps else []
    simcse = pipeline.run_stage(pipeline.load_recipe("train"), args.simcse, simcse_flags)

    stage1, stage2 = trained["stage1"], trained["stage2"]
    wall = {"text2token-stage1": stage1["train_runtime_s"],
            "text2token-stage2": stage1["train_runtime_s"] + stage2["train_runtime_s"],
            "simcse": simcse["train_runtime_s"], "untrained": 0.0, "tfidf": 0.0, "minilm": None}
    argv = ["--model", stage1["output_dir"], "--label", "text2token-stage1",
            "--model", stage2["output_dir"], "--label", "text2token-stage2",
            "--model", simcse["output_dir"], "--label", "simcse",
            "--baselines", "untrained", "tfidf", "minilm",
            "--output_dir", str(args.output_root / "compare"),
            "--extras", json.dumps({k: {"train_wall_s": None if v is None else round(v, 1)} for k, v in wall.items()})]
    backbone = pipeline.flag_value(args.extra_args, "--backbone")
    if backbone:
        argv += ["--backbone", backbone]
    if args.quick:
        argv += ["--quick", str(args.quick)]
    return pipeline.load_recipe("evaluate").main(argv)


if __name__ == "__main__":
    main()
