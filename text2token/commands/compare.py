"""The full comparison: Text2Token (stage 1, stage 2) against the untrained backbone, unsupervised
SimCSE and the LLM2Vec recipe trained with the same settings, TF-IDF and all-MiniLM-L6-v2, on the
whole offline suite, every system encoded at one stated length.

    text2token compare [--output_root outputs/smollm2-135m] [--steps N] [--learned simcse llm2vec]

Runs (or reuses, when complete) the two-stage pipeline, a SimCSE run with stage 1's settings and
steps, and the LLM2Vec recipe (bidirectional MNTP with stage 1's budget, merged, then SimCSE with
stage 2's, see recipes/smollm2-135m/llm2vec-*.yaml), then prints one table (systems x tasks,
category and overall averages, train wall time) and writes it as JSON, Markdown and a bar chart PNG
under <output_root>/compare/. Embeddings are cached, so a rerun only re-scores.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..backbones import weights_digest
from ..configuration import DEFAULT_INFERENCE_LENGTH
from .evaluate import evaluate
from .pipeline import RECIPES, run_pipeline, run_stage
from .pipeline import build_parser as pipeline_parser

# Trained baselines: SimCSE on the backbone as it is; LLM2Vec = bidirectional MNTP, merge, SimCSE.
LEARNED_BASELINES = ("simcse", "llm2vec")


def build_parser() -> argparse.ArgumentParser:
    recipes = RECIPES / "smollm2-135m"
    parser = argparse.ArgumentParser(prog="text2token compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", type=Path, default=recipes / "stage1.yaml")
    parser.add_argument("--stage2", type=Path, default=recipes / "stage2.yaml")
    parser.add_argument("--simcse", type=Path, default=recipes / "simcse.yaml")
    parser.add_argument("--llm2vec_mntp", type=Path, default=recipes / "llm2vec-mntp.yaml")
    parser.add_argument("--llm2vec_simcse", type=Path, default=recipes / "llm2vec-simcse.yaml")
    parser.add_argument("--learned", nargs="*", choices=LEARNED_BASELINES, default=list(LEARNED_BASELINES),
                        help="trained baselines beside Text2Token (default: all)")
    parser.add_argument("--output_root", type=Path, default=Path("outputs/smollm2-135m"))
    parser.add_argument("--steps", type=int, default=None, help="max_steps of every training run")
    parser.add_argument("--extra_args", default="", help="`text2token train` flags added to every run, quoted")
    parser.add_argument("--quick", type=int, default=None, metavar="N", help="cap each task at N rows")
    parser.add_argument("--max_length", type=int, default=DEFAULT_INFERENCE_LENGTH,
                        help="tokens per text for every system (the table states it in max_tokens)")
    return parser


def main(argv: list[str] | None = None):
    return compare(build_parser().parse_args(argv))


def compare(args: argparse.Namespace):
    """Train (or reuse) every learned system, then score all of them on one table."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    pipeline_args = pipeline_parser().parse_args([])
    pipeline_args.__dict__.update(stage1=args.stage1, stage2=args.stage2, output_root=args.output_root,
                                  stage1_args=args.extra_args, stage2_args=args.extra_args, skip_eval=True,
                                  steps=args.steps)
    trained = run_pipeline(pipeline_args)
    flags = args.extra_args.split()
    steps = {"max_steps": args.steps} if args.steps else {}
    learned = {}
    if "simcse" in args.learned:
        simcse = run_stage(args.simcse, flags, {**steps, "output_dir": str(args.output_root / "simcse")})
        learned["simcse"] = (simcse["output_dir"], simcse["train_runtime_s"])
    if "llm2vec" in args.learned:
        # As the pipeline's stage 2: SimCSE starts from this run's merged MNTP model, and retrains when it changed.
        mntp = run_stage(args.llm2vec_mntp, flags, {**steps, "output_dir": str(args.output_root / "llm2vec-mntp")})
        llm2vec = run_stage(args.llm2vec_simcse, flags,
                            {**steps, "output_dir": str(args.output_root / "llm2vec"), "backbone": mntp["output_dir"]},
                            started_from=weights_digest(mntp["output_dir"]))
        learned["llm2vec"] = (llm2vec["output_dir"], mntp["train_runtime_s"] + llm2vec["train_runtime_s"])

    stage1, stage2 = trained["stage1"], trained["stage2"]
    wall = {"text2token-stage1": stage1["train_runtime_s"],
            "text2token-stage2": stage1["train_runtime_s"] + stage2["train_runtime_s"],
            **{label: seconds for label, (_, seconds) in learned.items()},
            "untrained": 0.0, "tfidf": 0.0, "minilm": None}
    models = [("text2token-stage1", stage1["output_dir"]), ("text2token-stage2", stage2["output_dir"]),
              *((label, output_dir) for label, (output_dir, _) in learned.items())]
    return evaluate(models, baselines=["untrained", "tfidf", "minilm"], backbone=stage1["backbone"],
                    quick=args.quick, max_length=args.max_length, output_dir=str(args.output_root / "compare"),
                    extras={k: {"train_wall_s": None if v is None else round(v, 1)} for k, v in wall.items()})
