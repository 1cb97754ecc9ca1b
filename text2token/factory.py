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
from .targets.model_derived import PRIOR_FILE, build_model_derived_targets

logger = logging.getLogger(__name__)

TARGET_METHODS = ("data", "model")


def is_text2token_checkpoint(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "text2token"


def lora_settings(args: ModelArguments) -> LoraSettings:
    return LoraSettings(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=list(args.lora_target_modules))


def build_model(args: ModelArguments) -> Text2TokenModel:
    """The starting model, without a trainable adapter yet: the backbone wrapped, or a saved
    Text2Token model with its LoRA merged (the paper's stage-1 -> stage-2 hand-over)."""
    source = resolve_backbone(args.backbone)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    if is_text2token_checkpoint(source):
        model = Text2TokenModel.from_pretrained(source, dtype=dtype, attn_implementation=args.attn_implementation,
                                                use_safetensors=True)
        model.merge_lora()
        for name in ("pooling", "attention"):
            if getattr(model.config, name) != getattr(args, name):
                raise ValueError(f"{source} was trained with {name}={getattr(model.config, name)!r}, "
                                 f"but this run asks for {name}={getattr(args, name)!r}")
        return model
    return Text2TokenModel.from_backbone(
        source, pooling=args.pooling, attention=args.attention, prompt=args.prompt, max_length=args.max_length,
        dtype=dtype, attn_implementation=args.attn_implementation, trust_remote_code=args.trust_remote_code,
    )


def _wanted_params(args: DataArguments) -> dict:
    if args.target_method == "data":
        return {"weighting": args.weighting, "top_k": args.target_top_k, "stopwords": args.stopwords}
    return {"top_k": args.target_top_k or 32, **({"temperature": args.target_temperature}
                                                 if args.target_temperature is not None else {})}


def prepare_targets(model: Text2TokenModel, args: DataArguments, output_dir: str,
                    backbone_name: str = "") -> datasets.Dataset:
    """Load `args.targets`, or reuse/build targets in `<output_dir>/targets`.

    Model-derived targets come from `model` as it is (frozen, no adapter): call this before `add_lora`.
    """
    if args.target_method not in TARGET_METHODS:
        raise ValueError(f"target_method={args.target_method!r}: expected one of {TARGET_METHODS}")
    if args.targets:
        return load_targets(args.targets)
    cache = Path(output_dir) / "targets"
    if cache.is_dir():
        targets = load_targets(cache)
        info = read_info(targets)
        if (info and info.method == args.target_method and info.corpus == args.corpus
                and info.tokenizer_fingerprint == tokenizer_fingerprint(model.tokenizer)
                and all(info.params.get(k) == v for k, v in _wanted_params(args).items())):
            logger.info("Reusing the targets in %s (%d rows)", cache, len(targets))
            return targets
        logger.info("The targets in %s were built with other settings: rebuilding", cache)
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples, data_files=args.corpus_data_files)
    if args.target_method == "data":
        targets = build_data_driven_targets(corpus, model.tokenizer, text_column=args.text_column,
                                            weighting=args.weighting, top_k=args.target_top_k,
                                            stopwords=args.stopwords, max_length=model.config.max_length,
                                            backbone=backbone_name, corpus=args.corpus)
        save_targets(targets, cache)
    else:
        if model.config.lora is not None:
            raise ValueError("model-derived targets need the frozen starting model: build them before add_lora")
        if not is_text2token_checkpoint(model.config._name_or_path or ""):
            raise ValueError(f"target_method=model derives targets from a trained Text2Token model (stage 1), but "
                             f"backbone={backbone_name!r} is not one: train stage 1 first and pass its output folder")
        work_dir = Path(output_dir) / "targets-work"
        targets = build_model_derived_targets(
            model, corpus, work_dir=work_dir, text_column=args.text_column, temperature=args.target_temperature,
            top_k=args.target_top_k or 32, shard_size=args.target_shard_size, backbone=backbone_name,
            corpus=args.corpus)
        save_targets(targets, cache, extra_files=[work_dir / PRIOR_FILE])
    return load_targets(cache)


def load_training_texts(args: DataArguments) -> datasets.Dataset:
    """The corpus as a `text` column without empty rows: what the SimCSE objective trains on."""
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples, data_files=args.corpus_data_files)
    corpus = corpus.select_columns([args.text_column])
    if args.text_column != "text":
        corpus = corpus.rename_column(args.text_column, "text")
    kept = corpus.filter(lambda text: isinstance(text, str) and bool(text.strip()), input_columns="text")
    if len(kept) < len(corpus):
        logger.warning("%d empty or non-text rows of %s are skipped", len(corpus) - len(kept), args.corpus)
    return kept
