"""`text2token targets build`: a target dataset from a corpus, on every rank of a multi-process launch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..backbones import portable_backbone_name, resolve_backbone
from ..corpora import load_corpus
from ..distributed import is_main_process, join_process_group
from ..modeling import Text2TokenModel
from ..targets import build_data_driven_targets, load_targets, read_info, save_targets
from ..targets.model_derived import PRIOR_FILE, build_model_derived_targets
from ..targets.spec import (
    build_spec,
    resolve_params,
    stamp,
    stored_spec,
)

logger = logging.getLogger("text2token.targets")


def build_targets(args: argparse.Namespace) -> None:
    """Build (or keep, when its spec is unchanged) a target dataset; `args` as `text2token targets
    build --help` lists them."""
    # Under `accelerate launch` / torchrun: every rank encodes its share of a model-derived build;
    # a data-driven build runs on the main process with --num_proc tokenizer workers.
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
        model = Text2TokenModel.from_pretrained(args.backbone, use_safetensors=True)
        model.merge_lora()
        tokenizer, config = model.tokenizer, model.config
        params = resolve_params("model", pooling=config.pooling, max_length=config.max_length, prompt=config.prompt,
                                attention=config.attention, text_column=args.text_column, top_k=args.top_k,
                                temperature=args.temperature)
    spec = build_spec(args.method, params, source=args.corpus, corpus=corpus, text_column=args.text_column,
                      split="train", max_rows=args.max_rows, tokenizer=tokenizer, model=model)
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
        logger.warning("Replacing %s, built from another spec: %s", output, "; ".join(differing))
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
                                              shard_size=args.shard_size, backbone=backbone, corpus=spec.corpus,
                                              allow_cpu=args.cpu)
        if targets is None:  # not the main process: its share is written, the main process saves
            return
        extra = [work_dir / PRIOR_FILE]
    print(f"wrote {len(targets)} rows to {save_targets(stamp(targets, spec), args.output, extra_files=extra)}")
