"""`text2token` command line: one entry point, a subcommand per job.

    text2token train --config recipes/smollm2-135m/stage1.yaml [--key value ...]
    text2token pipeline | evaluate | compare | select [...]
    text2token targets build --corpus ... --output ...
    text2token explain MODEL "a text" [-k 10] [--compare MODEL2]
    text2token export MODEL OUT

Each subcommand takes `--help`; options are spelled with underscores everywhere (`--max_length`).
`recipes/*.py` are the same commands as scripts, for `accelerate launch`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .command_line import OneLineParser, check_model_path, run_command

# Subcommands with their own parser (HfArgumentParser for train): the rest of the command line is theirs.
JOBS = {
    "train": "train one stage from a recipe YAML plus --key value overrides (see `text2token train --help`)",
    "pipeline": "both stages of the paper's recipe, resumable, ending with a table and report.md",
    "evaluate": "score saved models and baselines on the offline suite or mteb tasks, one table",
    "compare": "train the baselines (SimCSE, LLM2Vec) beside Text2Token and score every system",
    "select": "score a run's checkpoints on one development task and publish the best (the authors' selection)",
}


def _explain(args) -> None:
    from .explain import compare, explain, load_model, load_pair, render, render_comparison

    check_model_path(args.model, "MODEL")
    if args.compare:
        check_model_path(args.compare, "--compare")
    if args.compare:
        pair = load_pair(args.model, args.compare)
        print(render_comparison(compare(*pair, args.texts, k=args.k, max_length=args.max_length),
                                names=(args.model, args.compare)))
    else:
        print(render(explain(load_model(args.model), args.texts, k=args.k, max_length=args.max_length)))


def _build_targets(args) -> None:
    from .commands.targets import run

    run(args)


def _export(args) -> None:
    from .export import export_sentence_transformers

    check_model_path(args.model, "MODEL")
    out = export_sentence_transformers(args.model, args.output, normalize=args.normalize)
    print(f"exported {args.model} to {out}: load it with SentenceTransformer({str(out)!r})")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .commands.targets import build_parser as build_target_parser

    parser = OneLineParser(prog="text2token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"text2token {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in JOBS.items():  # listed here; parsed by their own modules (see main)
        commands.add_parser(name, help=help_text, add_help=False)

    targets = commands.add_parser("targets", help="build target datasets").add_subparsers(dest="action", required=True)
    build = targets.add_parser("build", parents=[build_target_parser(add_help=False)],
                               help="build a target dataset from a corpus (reused when its spec is unchanged); "
                                    "the data options are training's (--target_method, --target_temperature, ...)")
    build.set_defaults(run=_build_targets)

    explain = commands.add_parser("explain", help="print each text's top vocabulary tokens under a model, "
                                  "marking those that appear in the text (*) and those derived beyond it")
    explain.add_argument("model", help="a saved Text2Token model (folder or Hub id), or a plain causal LM "
                         "(wrapped with the --compare model's pooling, else mean pooling)")
    explain.add_argument("texts", nargs="+")
    explain.add_argument("-k", type=int, default=10)
    explain.add_argument("--compare", metavar="MODEL2", default=None,
                         help="a second model (e.g. stage 1 vs stage 2, untrained vs trained) shown side by side")
    explain.add_argument("--max_length", type=int, default=None,
                         help="tokens read per text (default: the model's inference length)")
    explain.set_defaults(run=_explain)

    export = commands.add_parser("export", help="write a plain sentence-transformers folder (merged backbone, "
                                 "Transformer -> Pooling -> optional Normalize) that loads without text2token")
    export.add_argument("model", help="a saved Text2Token model")
    export.add_argument("output", help="a new, empty folder")
    export.add_argument("--normalize", action="store_true", help="add a Normalize module (unit-length vectors)")
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand. Returns None: the console script passes the return value to `sys.exit`, which
    would turn a job's summary into exit status 1 (the jobs' own functions return their results)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in JOBS:
        run_command(f"text2token {argv[0]}", importlib.import_module(f"text2token.commands.{argv[0]}").main, argv[1:])
        return
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    run_command(_prog(argv), _run, argv)


def _prog(argv: list[str]) -> str:
    words = [word for word in argv[:2] if not word.startswith("-")]
    return " ".join(["text2token", *words[:1 if words[:1] != ["targets"] else 2]])


def _run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
