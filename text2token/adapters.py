"""LoRA adapters injected into a backbone in place (peft), merged on demand.

Injecting into the backbone module itself, rather than wrapping it in a `PeftModel`, keeps parameter
names stable, so a checkpoint with an unmerged adapter reloads by plain `from_pretrained`: the config
records the LoRA settings and the model re-injects the same layers before the weights are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .value_checks import lora_problems

ADAPTER_NAME = "default"


@dataclass
class LoraSettings:
    """The paper's defaults: r=16, alpha=32, dropout=0.05 on the attention projections."""

    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    def to_dict(self) -> dict:
        return {"r": self.r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": list(self.target_modules)}


def complete_lora_settings(lora: dict | LoraSettings | None) -> dict:
    """LoRA settings as a dict with every field `LoraSettings` has, missing ones filled from its defaults
    (so `{"r": 4, "lora_alpha": 8}` saves and merges like a full dict), checked for range."""
    if isinstance(lora, LoraSettings):
        settings = lora.to_dict()
    elif lora is None or isinstance(lora, dict):
        settings = {**LoraSettings().to_dict(), **(lora or {})}
    else:
        raise TypeError(f"lora={lora!r}: expected a dict of LoRA settings or a LoraSettings")
    problems = lora_problems(settings, prefix="lora: ")
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def inject_lora(backbone: nn.Module, settings: dict) -> None:
    """Add LoRA layers to `backbone`, in fp32 whatever the backbone's dtype, and leave only them trainable."""
    config = LoraConfig(bias="none", **settings)
    inject_adapter_in_model(config, backbone, adapter_name=ADAPTER_NAME)
    if not any(isinstance(m, BaseTunerLayer) for m in backbone.modules()):
        raise ValueError(f"LoRA target_modules={settings.get('target_modules')} matched no module of the backbone")
    for name, param in backbone.named_parameters():
        param.requires_grad = "lora_" in name
    upcast_lora(backbone)


def upcast_lora(backbone: nn.Module) -> None:
    """Keep LoRA weights in fp32. peft gives adapters the base layer's dtype, and Trainer keeps no fp32
    master copy, so in a bf16 model AdamW steps of lr 5e-5 would round away on most entries. In fp32
    they accumulate; the bf16 base still runs in bf16 (peft casts the input to the adapter's dtype and
    the sum back to the base output's), and `bf16: true` mixed precision autocasts the matmuls."""
    for name, param in backbone.named_parameters():
        if "lora_" in name and param.dtype != torch.float32:
            param.data = param.data.float()


def has_lora(module: nn.Module) -> bool:
    return any(isinstance(m, BaseTunerLayer) for m in module.modules())


def merge_lora(backbone: nn.Module) -> None:
    """Fold every LoRA delta into its base weight and put the plain base layer back in its place."""
    for name, module in list(backbone.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge(adapter_names=[ADAPTER_NAME])
            parent_name, _, child = name.rpartition(".")
            parent = backbone.get_submodule(parent_name) if parent_name else backbone
            setattr(parent, child, module.get_base_layer())
    # peft leaves its bookkeeping on the model; without it a later inject starts clean.
    if hasattr(backbone, "peft_config"):
        del backbone.peft_config


def merged_state_dict(state_dict: dict[str, torch.Tensor], settings: dict) -> dict[str, torch.Tensor]:
    """The state dict of the same model with its LoRA folded in: `W + (alpha / r) * B @ A` per layer.

    Works from tensors alone, so it serves a live model and a state dict gathered by FSDP/DeepSpeed.
    """
    scaling = settings["lora_alpha"] / settings["r"]
    merged = {}
    for key, tensor in state_dict.items():
        if ".lora_" in key:
            continue
        if key.endswith(".base_layer.weight"):
            prefix = key[: -len(".base_layer.weight")]
            lora_a = state_dict[f"{prefix}.lora_A.{ADAPTER_NAME}.weight"]
            lora_b = state_dict[f"{prefix}.lora_B.{ADAPTER_NAME}.weight"]
            delta = (lora_b.float() @ lora_a.float()) * scaling
            tensor = (tensor.float() + delta.to(tensor.device)).to(tensor.dtype)
        merged[key.replace(".base_layer.", ".")] = tensor
    return merged
