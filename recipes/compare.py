"""The full comparison: Text2Token (stage 1, stage 2) against the untrained backbone, unsupervised
SimCSE and the LLM2Vec recipe trained with the same settings, TF-IDF and all-MiniLM-L6-v2, on the
whole offline suite.

    accelerate launch recipes/compare.py [--output_root outputs/smollm2-135m] [--steps N]
                                         [--learned simcse llm2vec]

Runs (or reuses, when complete) the two-stage pipeline, a SimCSE run with stage 1's settings and
steps, and the LLM2Vec recipe (bidirectional MNTP with stage 1's budget, merged, then SimCSE with
stage 2's, see recipes/smollm2-135m/llm2vec-*.yaml), then prints one table (systems x tasks, category and overall averages, train wall time)
and writes it as JSON, Markdown and a bar chart PNG under <output_root>/compare/. Embeddings are
cached, so a rerun only re-scores.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from text2token.backbones import weights_digest

HERE = Path(__file__).resolve().parent
# Trained baselines: SimCSE on the backbone as it is; LLM2Vec = bidirectional MNTP, merge, SimCSE.
LEARNED_BASELINES = ("simcse", "llm2vec")


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
    parser.add_argument("--llm2vec_mntp", type=Path, default=HERE / "smollm2-135m" / "llm2vec-mntp.yaml")
    parser.add_argument("--llm2vec_simcse", type=Path, default=HERE / "smollm2-135m" / "llm2vec-simcse.yaml")
    parser.add_argument("--learned", nargs="*", choices=LEARNED_BASELINES, default=list(LEARNED_BASELINES),
                        help="trained baselines beside Text2Token (default: all)")
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
    train = pipeline.load_recipe("train")
    common = args.extra_args.split() + (["--max_steps", str(args.steps)] if args.steps else [])
    learned = {}
    if "simcse" in args.learned:
        simcse = pipeline.run_stage(train, args.simcse, common + ["--output_dir", str(args.output_root / "simcse")])
        learned["simcse"] = (simcse["output_dir"], simcse["train_runtime_s"])
    if "llm2vec" in args.learned:
        # As the pipeline's stage 2: SimCSE starts from this run's merged MNTP model, and retrains when it changed.
        mntp = pipeline.run_stage(train, args.llm2vec_mntp,
                                  common + ["--output_dir", str(args.output_root / "llm2vec-mntp")])
        llm2vec = pipeline.run_stage(train, args.llm2vec_simcse,
                                     common + ["--output_dir", str(args.output_root / "llm2vec"),
                                               "--backbone", mntp["output_dir"]],
                                     started_from=weights_digest(mntp["output_dir"]))
        learned["llm2vec"] = (llm2vec["output_dir"], mntp["train_runtime_s"] + llm2vec["train_runtime_s"])

    stage1, stage2 = trained["stage1"], trained["stage2"]
    wall = {"text2token-stage1": stage1["train_runtime_s"],
            "text2token-stage2": stage1["train_runtime_s"] + stage2["train_runtime_s"],
            **{label: seconds for label, (_, seconds) in learned.items()},
            "untrained": 0.0, "tfidf": 0.0, "minilm": None}
    argv = ["--model", stage1["output_dir"], "--label", "text2token-stage1",
            "--model", stage2["output_dir"], "--label", "text2token-stage2"]
    for label, (output_dir, _) in learned.items():
        argv += ["--model", output_dir, "--label", label]
    argv += ["--baselines", "untrained", "tfidf", "minilm",
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
