"""`text2token` command line: explain embeddings, build target datasets."""

from __future__ import annotations

import argparse
import logging
import sys


def _explain(args) -> None:
    from .explain import compare, explain, load_model, load_pair, render, render_comparison

    if args.compare:
        pair = load_pair(args.model, args.compare)
        print(render_comparison(compare(*pair, args.texts, k=args.k), names=(args.model, args.compare)))
    else:
        print(render(explain(load_model(args.model), args.texts, k=args.k)))


def _build_targets(args) -> None:
    from pathlib import Path

    from .backbones import resolve_backbone
    from .corpora import load_corpus
    from .targets import build_data_driven_targets, save_targets
    from .targets.model_derived import PRIOR_FILE, build_model_derived_targets

    corpus = load_corpus(args.corpus, text_column=args.text_column, max_rows=args.max_rows)
    if args.method == "data":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(args.backbone))
        targets = build_data_driven_targets(corpus, tokenizer, text_column=args.text_column, weighting=args.weighting,
                                            stopwords=args.stopwords, max_length=args.max_length,
                                            top_k=args.top_k, backbone=args.backbone, corpus=args.corpus)
        extra = []
    else:
        from .modeling import Text2TokenModel

        model = Text2TokenModel.from_pretrained(args.backbone, use_safetensors=True)
        model.merge_lora()
        work_dir = Path(args.work_dir or f"{args.output}.work")
        targets = build_model_derived_targets(model, corpus, work_dir=work_dir, text_column=args.text_column,
                                              temperature=args.temperature, top_k=args.top_k or 32,
                                              shard_size=args.shard_size, backbone=args.backbone, corpus=args.corpus)
        extra = [work_dir / PRIOR_FILE]
    print(f"wrote {len(targets)} rows to {save_targets(targets, args.output, extra_files=extra)}")


def build_parser() -> argparse.ArgumentParser:
    from .backbones import EMBEDDED_DEFAULT
    from .corpora import DEFAULT_CORPUS

    parser = argparse.ArgumentParser(prog="text2token", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    explain = commands.add_parser("explain", help="print each text's top vocabulary tokens under a model, "
                                  "marking those that appear in the text (*) and those derived beyond it")
    explain.add_argument("model", help="a saved Text2Token model (folder or Hub id), or a plain causal LM "
                         "(wrapped with the --compare model's pooling, else mean pooling)")
    explain.add_argument("texts", nargs="+")
    explain.add_argument("-k", type=int, default=10)
    explain.add_argument("--compare", metavar="MODEL2", default=None,
                         help="a second model (e.g. stage 1 vs stage 2, untrained vs trained) shown side by side")
    explain.set_defaults(run=_explain)

    targets = commands.add_parser("targets", help="target datasets").add_subparsers(dest="action", required=True)
    build = targets.add_parser("build", help="build a target dataset from a corpus")
    build.add_argument("--method", choices=["data", "model"], default="data",
                       help="data: the text's own tokens; model: tokens a trained Text2Token model derives")
    build.add_argument("--backbone", default=EMBEDDED_DEFAULT,
                       help="tokenizer source (data), or the trained Text2Token model (model)")
    build.add_argument("--corpus", default=DEFAULT_CORPUS)
    build.add_argument("--text-column", default="text")
    build.add_argument("--max-rows", type=int, default=None)
    build.add_argument("--weighting", choices=["uniform", "idf"], default="uniform")
    build.add_argument("--stopwords", choices=["nltk", "sklearn", "none"], default="nltk",
                       help="data: stopword list (nltk is the paper's)")
    build.add_argument("--max-length", type=int, default=128,
                       help="data: truncate each text's target tokens at the model's training length")
    build.add_argument("--top-k", type=int, default=None)
    build.add_argument("--temperature", type=float, default=None, help="model: tau (default the paper's)")
    build.add_argument("--work-dir", default=None, help="model: resumable shards (default <output>.work)")
    build.add_argument("--shard-size", type=int, default=1024, help="model: texts per resumable shard")
    build.add_argument("--output", required=True)
    build.set_defaults(run=_build_targets)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
