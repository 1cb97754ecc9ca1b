"""The model a recipe starts from, built from its `ModelArguments`: the backbone wrapped, or a saved
Text2Token model with its LoRA merged; and the LoRA settings of the adapter it trains."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .adapters import LoraSettings
from .arguments import ModelArguments
from .backbones import resolve_backbone
from .model_files import check_model_folder
from .modeling import Text2TokenModel


def is_text2token_checkpoint(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "text2token"


def lora_settings(args: ModelArguments) -> LoraSettings:
    return LoraSettings(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=list(args.lora_target_modules))


def build_model(args: ModelArguments) -> Text2TokenModel:
    """The starting model, without a trainable adapter yet: the backbone wrapped, or a saved
    Text2Token model with its LoRA merged (the paper's stage-1 -> stage-2 hand-over)."""
    model = _load_starting_model(args)
    for name in ("inference_max_length", "similarity"):  # inference settings the saved config carries
        if getattr(args, name, None) is not None:
            setattr(model.config, name, getattr(args, name))
    model.config.validate_inference_settings()
    return model


def _load_starting_model(args: ModelArguments) -> Text2TokenModel:
    source = resolve_backbone(args.backbone)
    check_model_folder(source)  # a damaged folder is named before anything loads
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
