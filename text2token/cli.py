"""`text2token` command line: explain embeddings, build target datasets."""

from __future__ import annotations

import argparse
import logging
import sys


def _explain(args) -> None:
    from .modeling import Text2TokenModel

    model = Text2TokenModel.from_pretrained(args.model, use_safetensors=True)
    for text, tokens in zip(args.texts, model.explain(args.texts, k=args.k)):
        print(text)
        print("  " + "  ".join(f"{token!r} {prob:.3f}" for token, prob in tokens))


def _build_targets(args) -> None:
    from transformers import AutoTokenizer

    from .backbones import resolve_backbone
    from .corpora import load_corpus
    from .targets import build_data_driven_targets, save_targets

    if args.method != "data":
        raise SystemExit(f"--method {args.method}: only 'data' is available in this version")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(args.backbone))
    corpus = load_corpus(args.corpus, text_column=args.text_column, max_rows=args.max_rows)
    targets = build_data_driven_targets(corpus, tokenizer, text_column=args.text_column, weighting=args.weighting,
                                        top_k=args.top_k, backbone=args.backbone, corpus=args.corpus)
    print(f"wrote {len(targets)} rows to {save_targets(targets, args.output)}")


def build_parser() -> argparse.ArgumentParser:
    from .backbones import EMBEDDED_DEFAULT
    from .corpora import DEFAULT_CORPUS

    parser = argparse.ArgumentParser(prog="text2token", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    explain = commands.add_parser("explain", help="print each text's top vocabulary tokens under a model")
    explain.add_argument("model", help="a saved Text2Token model (folder or Hub id)")
    explain.add_argument("texts", nargs="+")
    explain.add_argument("-k", type=int, default=10)
    explain.set_defaults(run=_explain)

    targets = commands.add_parser("targets", help="target datasets").add_subparsers(dest="action", required=True)
    build = targets.add_parser("build", help="build a target dataset from a corpus")
    build.add_argument("--method", choices=["data"], default="data")
    build.add_argument("--backbone", default=EMBEDDED_DEFAULT)
    build.add_argument("--corpus", default=DEFAULT_CORPUS)
    build.add_argument("--text-column", default="text")
    build.add_argument("--max-rows", type=int, default=None)
    build.add_argument("--weighting", choices=["uniform", "idf"], default="uniform")
    build.add_argument("--top-k", type=int, default=None)
    build.add_argument("--output", required=True)
    build.set_defaults(run=_build_targets)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
