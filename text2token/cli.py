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

    from .backbones import portable_backbone_name, resolve_backbone
    from .corpora import load_corpus
    from .distributed import is_main_process, join_process_group, world_size
    from .targets import build_data_driven_targets, load_targets, read_info, save_targets, tokenizer_fingerprint
    from .targets.model_derived import PRIOR_FILE, build_model_derived_targets
    from .targets.spec import (TargetSpec, model_digest, portable_corpus_name, resolve_params, stamp, stored_spec,
                               text_fingerprint)

    # Under `accelerate launch` / torchrun: every rank encodes its share of a model-derived build;
    # a data-driven build runs on the main process with --num-proc tokenizer workers.
    join_process_group(args.ddp_timeout)
    if args.method == "data" and not is_main_process():
        return
    corpus = load_corpus(args.corpus, text_column=args.text_column, max_rows=args.max_rows)
    model = None
    if args.method == "data":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(args.backbone))
        params = resolve_params("data", pooling="mean", max_length=args.max_length, text_column=args.text_column,
                                weighting=args.weighting, top_k=args.top_k, stopwords=args.stopwords)
    else:
        from .modeling import Text2TokenModel

        model = Text2TokenModel.from_pretrained(args.backbone, use_safetensors=True)
        model.merge_lora()
        tokenizer, config = model.tokenizer, model.config
        params = resolve_params("model", pooling=config.pooling, max_length=config.max_length, prompt=config.prompt,
                                attention=config.attention, text_column=args.text_column, top_k=args.top_k,
                                temperature=args.temperature)
    fingerprint = text_fingerprint(corpus, args.text_column)
    spec = TargetSpec(method=args.method, params=params, corpus=portable_corpus_name(args.corpus, fingerprint),
                      corpus_fingerprint=fingerprint, split="train", max_rows=args.max_rows,
                      tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
                      model_digest=model_digest(model) if model is not None else "")
    output = Path(args.output)
    if output.exists():  # every rank reads the same files here, so all take the same branch
        try:
            existing = read_info(load_targets(output))
        except (FileNotFoundError, ValueError):
            raise SystemExit(f"{output} exists and is not a target dataset: choose another --output") from None
        differing = spec.differences(stored_spec(existing))
        if not differing:
            if is_main_process():
                print(f"{output} already holds these targets (spec {spec.key()}): nothing to build")
            return
        logging.getLogger("text2token.cli").warning("Replacing %s, built from another spec: %s", output,
                                                     "; ".join(differing))
    backbone = portable_backbone_name(args.backbone)
    if model is None:
        targets = build_data_driven_targets(corpus, tokenizer, text_column=args.text_column, weighting=args.weighting,
                                            stopwords=args.stopwords, max_length=params["max_length"],
                                            top_k=params["top_k"], backbone=backbone, corpus=spec.corpus,
                                            num_proc=args.num_proc)
        extra = []
    else:
        work_dir = Path(args.work_dir or f"{args.output}.work")
        targets = build_model_derived_targets(model, corpus, work_dir=work_dir, text_column=args.text_column,
                                              temperature=params["temperature"], top_k=params["top_k"],
                                              shard_size=args.shard_size, backbone=backbone, corpus=spec.corpus)
        if targets is None:  # not the main process: its share is written, the main process saves
            return
        extra = [work_dir / PRIOR_FILE]
    print(f"wrote {len(targets)} rows to {save_targets(stamp(targets, spec), args.output, extra_files=extra)}")


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
    build.add_argument("--num-proc", type=int, default=None,
                       help="data: tokenizer worker processes (datasets.map num_proc) for large corpora")
    build.add_argument("--ddp-timeout", type=float, default=None,
                       help="seconds a collective may wait under a multi-process launch (default 1800, or "
                            "$TEXT2TOKEN_DDP_TIMEOUT)")
    build.add_argument("--output", required=True)
    build.set_defaults(run=_build_targets)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
