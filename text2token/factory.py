"""Build the pieces a recipe needs from its arguments: the model and the training targets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import torch

from .adapters import LoraSettings
from .arguments import DataArguments, ModelArguments
from .backbones import resolve_backbone
from .corpora import load_corpus
from .modeling import Text2TokenModel
from .targets import build_data_driven_targets, load_targets, read_info, save_targets, tokenizer_fingerprint

logger = logging.getLogger(__name__)


def _is_text2token_checkpoint(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "text2token"


def build_model(args: ModelArguments) -> Text2TokenModel:
    """A trainable model: the backbone wrapped, with a fresh LoRA adapter.

    Continuing from a saved Text2Token model merges its adapter first, so stage 2 trains a new LoRA on
    top of the merged stage-1 weights, as in the paper.
    """
    source = resolve_backbone(args.backbone)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    lora = LoraSettings(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=list(args.lora_target_modules))
    if _is_text2token_checkpoint(source):
        model = Text2TokenModel.from_pretrained(source, dtype=dtype, attn_implementation=args.attn_implementation,
                                                use_safetensors=True)
        model.merge_lora()
        for name, value in (("pooling", args.pooling), ("attention", args.attention)):
            if getattr(model.config, name) != value:
                raise ValueError(f"{source} was trained with {name}={getattr(model.config, name)!r}, "
                                 f"but this run asks for {name}={value!r}")
        model.add_lora(lora)
        return model
    return Text2TokenModel.from_backbone(
        source, pooling=args.pooling, attention=args.attention, prompt=args.prompt, max_length=args.max_length,
        lora=lora, dtype=dtype, attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code,
    )


def prepare_targets(model: Text2TokenModel, args: DataArguments, output_dir: str,
                    backbone_name: str = "") -> datasets.Dataset:
    """Load `args.targets`, or reuse/build the data-driven targets in `<output_dir>/targets`."""
    if args.targets:
        return load_targets(args.targets)
    cache = Path(output_dir) / "targets"
    if cache.is_dir():
        targets = load_targets(cache)
        info = read_info(targets)
        wanted = {"weighting": args.weighting, "top_k": args.target_top_k}
        if info and info.tokenizer_fingerprint == tokenizer_fingerprint(model.tokenizer) and all(
                info.params.get(k) == v for k, v in wanted.items()) and info.corpus == args.corpus:
            logger.info("Reusing the targets in %s (%d rows)", cache, len(targets))
            return targets
        logger.info("The targets in %s were built with other settings: rebuilding", cache)
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples)
    targets = build_data_driven_targets(corpus, model.tokenizer, text_column=args.text_column,
                                        weighting=args.weighting, top_k=args.target_top_k,
                                        backbone=backbone_name, corpus=args.corpus)
    save_targets(targets, cache)
    return load_targets(cache)
