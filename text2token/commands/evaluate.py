"""Score models and baselines side by side and print one table.

    text2token evaluate --model outputs/smollm2-135m/stage2 --baselines untrained tfidf
    text2token evaluate --model PATH --benchmark "MTEB(eng, v2)"     # needs the Hub (mteb data)

Without --benchmark/--tasks it runs the offline suite (five tasks from real public text shipped in
this package). Embeddings are cached per system (keyed by a digest of the weights), so a rerun of
the table only re-scores, and an interrupted run resumes from its last saved window of texts.

Under `accelerate launch ... text2token evaluate ...` every process encodes its share of each task
(length-sorted batches, on its own accelerator, bf16 there by default) and the main process writes
the table. Each saved model is read at its own inference length (`config.encode_length`) unless
--max_length says otherwise; the table states each system's length in `max_tokens`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from ..backbones import EMBEDDED_DEFAULT
from ..cache import cache_root
from ..command_line import OneLineParser, check_model_path
from ..devices import AUTO_DTYPE
from ..distributed import is_main_process, join_process_group
from ..evaluation.systems import BASELINES, load_system

logger = logging.getLogger("text2token.evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="text2token evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="a saved Text2Token model; repeatable")
    parser.add_argument("--label", action="append", default=[], help="table label of each --model, in order")
    parser.add_argument("--mteb_name", action="append", default=[], metavar="ORG/NAME",
                        help="name each --model's results are filed under, in order (default: its Hub id, "
                             "the run's hub_model_id, or text2token-eval/<folder>)")
    parser.add_argument("--baselines", nargs="*", default=[], choices=BASELINES)
    parser.add_argument("--backbone", default=EMBEDDED_DEFAULT, help="backbone of the `untrained` baseline")
    parser.add_argument("--pooling", default="mean", help="pooling of the `untrained` baseline")
    parser.add_argument("--max_length", type=int, default=None,
                        help="tokens per text, one length for every system (default: each model's own inference "
                             "length, config.encode_length; the table states it in max_tokens)")
    parser.add_argument("--dtype", default=AUTO_DTYPE,
                        help="dtype models encode in: auto (bfloat16 on an accelerator, float32 on the CPU) | "
                             "float32 | bfloat16 | float16")
    parser.add_argument("--cpu", action="store_true",
                        help="encode on the CPU even when an accelerator is visible (refused otherwise)")
    parser.add_argument("--benchmark", default=None, help='an mteb benchmark, e.g. "MTEB(eng, v2)" (Hub needed)')
    parser.add_argument("--tasks", nargs="*", default=None, help="mteb or offline task names")
    parser.add_argument("--quick", type=int, default=None, metavar="N",
                        help="cap every offline task table at N rows (a fast smoke table; not comparable "
                             "with full-suite scores)")
    parser.add_argument("--extras", default=None, help="JSON {label: {column: value}} added to the table")
    parser.add_argument("--output_dir", default="outputs/eval")
    parser.add_argument("--cache_dir", default=str(cache_root() / "embeddings"))
    parser.add_argument("--batch_size", type=int, default=32)
    return parser


def resolve_tasks(benchmark: str | None = None, tasks: list[str] | None = None, quick: int | None = None):
    """The mteb tasks to score: a named mteb benchmark, named tasks (offline ones from the frozen
    snapshots, capped at `quick` rows), or the whole offline suite."""
    if benchmark:
        import mteb

        return list(mteb.get_benchmark(benchmark).tasks)
    from ..evaluation.offline_tasks import OFFLINE_TASKS, load_offline_tasks

    offline = {cls.metadata.name for cls in OFFLINE_TASKS}
    if tasks and not set(tasks) <= offline:
        import mteb

        return list(mteb.get_tasks(tasks=tasks))
    return load_offline_tasks(tasks, max_rows=quick)


def results_folders(systems: dict, output_dir: str | Path) -> dict[str, Path]:
    """Where mteb's ResultCache filed each saved model's results: `{org}__{model}/{revision}/` under
    `<output_dir>/mteb/results/`, as in mteb's results repository (copy that folder into a pull request)."""
    root = Path(output_dir) / "mteb" / "results"
    return {label: root / system.mteb_meta.model_name_as_path() / system.mteb_meta.revision
            for label, system in systems.items() if getattr(system, "mteb_meta", None) is not None}


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    join_process_group()  # under accelerate launch: every rank encodes its share
    for model in args.model:
        check_model_path(model, "--model")
    if len(args.label) not in (0, len(args.model)):
        raise SystemExit("give one --label per --model, or none")
    if len(args.mteb_name) not in (0, len(args.model)):
        raise SystemExit("give one --mteb_name per --model, or none")
    options = vars(args)
    return evaluate(models=list(zip(options.pop("label") or [None] * len(args.model), options.pop("model"))),
                    mteb_names=options.pop("mteb_name") or None,
                    extras=json.loads(args.extras) if args.extras else None,
                    **{k: v for k, v in options.items() if k != "extras"})


def evaluate(models: list[tuple[str | None, str]] = (), *, baselines=(), backbone: str = EMBEDDED_DEFAULT,
             pooling: str = "mean", max_length: int | None = None, benchmark: str | None = None,
             tasks: list[str] | None = None, quick: int | None = None, extras: dict | None = None,
             output_dir: str = "outputs/eval", cache_dir: str | None = None, batch_size: int = 32,
             mteb_names: list[str | None] | None = None, dtype: str | None = AUTO_DTYPE, cpu: bool = False):
    """Score `models` ((label, saved model) pairs; a None label is the folder's name) and `baselines` on one
    table, every system encoded at `max_length` tokens (None: each model's own inference length); the main
    process writes JSON, Markdown and a PNG to `output_dir`. Under a multi-process launch every rank calls
    this and encodes its share; every rank returns the table."""
    from ..evaluation.suite import plot_table, run_offline_suite, summarize, to_markdown, write_table

    names = mteb_names or [None] * len(models)
    systems = {(label or (Path(spec).name if os.path.exists(spec) else spec)):
               load_system(spec, max_length=max_length, mteb_name=name, dtype=dtype, allow_cpu=cpu)
               for (label, spec), name in zip(models, names)}
    # Baselines read what the first model reads, so the table compares like with like.
    baseline_length = max_length or next((s.max_length for s in systems.values()), None)
    for name in baselines:
        systems[name] = load_system(name, backbone=backbone, pooling=pooling, max_length=baseline_length,
                                    dtype=dtype, allow_cpu=cpu)
    if not systems:
        raise SystemExit("nothing to evaluate: give --model and/or --baselines")
    extras = dict(extras or {})
    for label, system in systems.items():  # the length each system read, in the table itself
        extras.setdefault(label, {})["max_tokens"] = getattr(system, "max_length", None)
    results = run_offline_suite(systems, output_dir, cache_dir=cache_dir or str(cache_root() / "embeddings"),
                                tasks=resolve_tasks(benchmark, tasks, quick), extras=extras, batch_size=batch_size)
    table = summarize(results)
    if not is_main_process():
        return table
    json_path, md_path = write_table(table, output_dir)
    plot_table(table, Path(output_dir) / "summary.png")
    print(to_markdown(table))
    lengths = ", ".join(f"{label} {extras[label]['max_tokens']}" for label in systems
                        if extras[label].get("max_tokens") is not None)
    print(f"\nTokens read per text: {lengths} (MiniLM capped at its 512 positions; TF-IDF reads whole texts).")
    print(f"\nwritten: {json_path}, {md_path}, {Path(output_dir) / 'summary.png'}")
    for label, folder in results_folders(systems, output_dir).items():
        print(f"mteb results of {label} (mteb results-repository layout, model_meta.json beside): {folder}")
    return table
