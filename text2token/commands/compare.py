"""The full comparison: Text2Token (stage 1, stage 2, and the `long` recipe) against the untrained
backbone, unsupervised SimCSE and the LLM2Vec recipe trained with the same settings, TF-IDF and
all-MiniLM-L6-v2, on the whole offline suite, every system encoded at one stated length, every
trained system run with several seeds.

    text2token compare [--output_root outputs/smollm2-135m] [--seeds 42 43 44] [--learned simcse llm2vec long]

For each seed it runs (or reuses, when complete) the two-stage pipeline, a SimCSE run with stage 1's
settings and steps, the LLM2Vec recipe (bidirectional MNTP with stage 1's budget, merged, then SimCSE
with stage 2's, see recipes/smollm2-135m/llm2vec-*.yaml) and the `long` two-stage recipe. The
recipe's own seed trains under <output_root>/<system> (so the main job's folders are reused); any
other seed under <output_root>/seed-<N>/<system>. Then it scores all of them on one table and writes,
under <output_root>/compare/: summary.* (one row per run) and seeds.md/.json/.png (mean ± std over
seeds, with every difference from text2token-stage2 that is not larger than the spread marked ≈).
Embeddings are cached, so a rerun only re-scores. Where several seeds of the whole suite cost too
much, score one seed on it with `--spread_from <a several-seed run's seeds.json>` (e.g. a `--quick`
cut's): each single-seed system then borrows that run's standard deviations, marked †.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..command_line import OneLineParser
from ..configuration import DEFAULT_INFERENCE_LENGTH
from ..digests import weights_digest
from ..evaluation.spread import seed_label, write_spread
from .evaluate import evaluate
from .pipeline import MAIN_RECIPES, PipelineOptions, run_pipeline, run_stage
from .train import parse_args

# Trained systems beside Text2Token's main recipe: SimCSE on the backbone as it is; LLM2Vec =
# bidirectional MNTP, merge, SimCSE; `long` = Text2Token's two stages with the longer recipe.
LEARNED_BASELINES = ("simcse", "llm2vec", "long")
REFERENCE = "text2token-stage2"


@dataclass
class CompareOptions:
    """What `text2token compare` runs; each field's default is the command line's."""

    stage1: Path = MAIN_RECIPES / "stage1.yaml"
    stage2: Path = MAIN_RECIPES / "stage2.yaml"
    long_stage1: Path = MAIN_RECIPES / "long-stage1.yaml"
    long_stage2: Path = MAIN_RECIPES / "long-stage2.yaml"
    simcse: Path = MAIN_RECIPES / "simcse.yaml"
    llm2vec_mntp: Path = MAIN_RECIPES / "llm2vec-mntp.yaml"
    llm2vec_simcse: Path = MAIN_RECIPES / "llm2vec-simcse.yaml"
    learned: list[str] = field(default_factory=lambda: list(LEARNED_BASELINES))
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    output_root: Path = Path("outputs/smollm2-135m")
    steps: int | None = None  # max_steps of every training run
    extra_args: str = ""  # `text2token train` flags added to every run, quoted
    quick: int | None = None  # cap each task at N rows
    spread_from: Path | None = None  # a several-seed run's seeds.json whose spreads single seeds borrow
    max_length: int = DEFAULT_INFERENCE_LENGTH  # tokens per text for every system


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="text2token compare", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    for recipe in ("stage1", "stage2", "long_stage1", "long_stage2", "simcse", "llm2vec_mntp", "llm2vec_simcse"):
        parser.add_argument(f"--{recipe}", type=Path)
    parser.add_argument("--learned", nargs="*", choices=LEARNED_BASELINES,
                        help="trained systems beside Text2Token's main recipe (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="training seeds of every trained system (the table reports mean ± std over them)")
    parser.add_argument("--output_root", type=Path)
    parser.add_argument("--steps", type=int, help="max_steps of every training run")
    parser.add_argument("--extra_args", help="`text2token train` flags added to every run, quoted")
    parser.add_argument("--quick", type=int, metavar="N", help="cap each task at N rows")
    parser.add_argument("--spread_from", type=Path, metavar="SEEDS_JSON",
                        help="a seeds.json of an earlier several-seed compare (e.g. on a --quick cut): systems "
                             "scored with one seed here borrow its standard deviations, marked †")
    parser.add_argument("--max_length", type=int,
                        help="tokens per text for every system (the table states it in max_tokens)")
    parser.set_defaults(**asdict(CompareOptions()))
    return parser


def main(argv: list[str] | None = None):
    return compare(CompareOptions(**vars(build_parser().parse_args(argv))))


def seed_root(output_root: Path, seed: int, recipe_seed: int) -> Path:
    """Where one seed's runs live: the recipe's own seed in `output_root` itself, others beside it."""
    return output_root if seed == recipe_seed else output_root / f"seed-{seed}"


def train_seed(args: CompareOptions, seed: int, root: Path) -> tuple[dict, dict]:
    """Train (or reuse) every system of one seed under `root`: ({label: folder}, {label: train seconds})."""
    flags = [*args.extra_args.split(), "--seed", str(seed)]
    steps = {"max_steps": args.steps} if args.steps else {}

    def pipeline(stage1: Path, stage2: Path, output_root: Path) -> dict:
        return run_pipeline(PipelineOptions(stage1=stage1, stage2=stage2, output_root=output_root, skip_eval=True,
                                            stage1_args=" ".join(flags), stage2_args=" ".join(flags),
                                            steps=args.steps))

    trained = pipeline(args.stage1, args.stage2, root)
    stage1, stage2 = trained["stage1"], trained["stage2"]
    folders = {"text2token-stage1": stage1["output_dir"], REFERENCE: stage2["output_dir"]}
    seconds = {"text2token-stage1": stage1["train_runtime_s"],
               REFERENCE: stage1["train_runtime_s"] + stage2["train_runtime_s"]}
    if "long" in args.learned:
        long = pipeline(args.long_stage1, args.long_stage2, root / "long")
        folders["text2token-long"] = long["stage2"]["output_dir"]
        seconds["text2token-long"] = long["stage1"]["train_runtime_s"] + long["stage2"]["train_runtime_s"]
    if "simcse" in args.learned:
        simcse = run_stage(args.simcse, flags, {**steps, "output_dir": str(root / "simcse")})
        folders["simcse"], seconds["simcse"] = simcse["output_dir"], simcse["train_runtime_s"]
    if "llm2vec" in args.learned:
        # As the pipeline's stage 2: SimCSE starts from this run's merged MNTP model, and retrains when it changed.
        mntp = run_stage(args.llm2vec_mntp, flags, {**steps, "output_dir": str(root / "llm2vec-mntp")})
        llm2vec = run_stage(args.llm2vec_simcse, flags,
                            {**steps, "output_dir": str(root / "llm2vec"), "backbone": mntp["output_dir"]},
                            started_from=weights_digest(mntp["output_dir"]))
        folders["llm2vec"] = llm2vec["output_dir"]
        seconds["llm2vec"] = mntp["train_runtime_s"] + llm2vec["train_runtime_s"]
    return folders, seconds


def compare(args: CompareOptions):
    """Train (or reuse) every learned system for every seed, then score all of them on one table."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if len(set(args.seeds)) != len(args.seeds):
        raise SystemExit(f"--seeds has repeats: {args.seeds}")
    if args.spread_from is not None and not args.spread_from.is_file():  # before hours of training, not after
        raise SystemExit(f"--spread_from {args.spread_from}: no such file")
    # The untrained baseline is stage 1's starting point, --extra_args included (e.g. another --backbone).
    stage1_model, _, stage1_training = parse_args(["--config", str(args.stage1), *args.extra_args.split()])
    models, wall = [], {}
    for seed in args.seeds:
        root = seed_root(args.output_root, seed, stage1_training.seed)
        folders, seconds = train_seed(args, seed, root)
        for system, folder in folders.items():
            models.append((seed_label(system, seed), folder))
            wall[seed_label(system, seed)] = round(seconds[system], 1)
    wall.update({"untrained": 0.0, "tfidf": 0.0, "minilm": None})
    output_dir = args.output_root / "compare"
    table = evaluate(models, baselines=["untrained", "tfidf", "minilm"], backbone=stage1_model.backbone,
                     quick=args.quick,
                     max_length=args.max_length, output_dir=str(output_dir),
                     extras={label: {"train_wall_s": seconds} for label, seconds in wall.items()})
    pooled = write_spread(table, output_dir, REFERENCE, spread_from=args.spread_from)
    cut = f"each task capped at {args.quick} rows" if args.quick else "the full offline suite"
    print(f"\nMean ± std over seeds {', '.join(map(str, args.seeds))} ({cut}, {args.max_length} tokens):\n")
    print(pooled["markdown"])
    print(f"written: {output_dir / 'seeds.md'}, {output_dir / 'seeds.json'}, {output_dir / 'seeds.png'}")
    return table
