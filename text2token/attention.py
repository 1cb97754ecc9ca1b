"""Switch a causal-LM backbone between causal and bidirectional attention without forking its code.

Transformers builds every attention mask in `masking_utils`, which falls back to a bidirectional mask
when the config says `is_causal=False`; attention kernels that skip the mask (SDPA with no padding,
flash attention) read the `is_causal` flag of each attention module instead, so both are set.
"""

from __future__ import annotations

from torch import nn

from .configuration import ATTENTION_MODES


def set_attention_mode(backbone: nn.Module, mode: str) -> None:
    if mode not in ATTENTION_MODES:
        raise ValueError(f"attention={mode!r}: expected one of {ATTENTION_MODES}")
    causal = mode == "causal"
    config = getattr(backbone, "config", None)
    if config is not None:
        config.is_causal = causal
        for sub in (getattr(config, "get_text_config", lambda: None)(),):
            if sub is not None and sub is not config:
                sub.is_causal = causal
    for module in backbone.modules():
        if module is not backbone and hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = causal
