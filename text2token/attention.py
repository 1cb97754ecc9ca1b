"""Switch a causal-LM backbone between causal and bidirectional attention without forking its code.

Transformers builds every attention mask in `masking_utils`, which falls back to a bidirectional mask
when the config says `is_causal=False`; attention kernels that skip the mask (SDPA with no padding,
flash attention) read the `is_causal` flag of each attention module instead, so both are set.

Both are conventions of the installed transformers, not promises: a release that builds masks another way
would silently turn "bidirectional" back into causal (the most common complaint of LLM2Vec users). So
switching to bidirectional runs `check_bidirectional`, a probe through the first decoder layer that
proves a later token changes an earlier position's output, and raises if it does not.
"""

from __future__ import annotations

import contextlib

import torch
import transformers
from torch import nn

from .configuration import ATTENTION_MODES


class BidirectionalAttentionError(RuntimeError):
    """Bidirectional attention was asked for, but the installed transformers still attends causally."""


def set_attention_mode(backbone: nn.Module, mode: str, *, check: bool = True) -> None:
    """Switch `backbone` to `mode`; for "bidirectional", prove it took effect (`check_bidirectional`)
    unless `check=False` or the weights are not loaded yet (`from_pretrained` builds on the meta device
    and checks after loading, see `verify_attention_mode`)."""
    _set_flags(backbone, mode)
    if check:
        verify_attention_mode(backbone, mode)


def verify_attention_mode(backbone: nn.Module, mode: str) -> None:
    """Run `check_bidirectional` when `mode` is "bidirectional" and the weights are materialised."""
    # Meta weights (inside from_pretrained) and DeepSpeed ZeRO-3 shards (`ds_id`) cannot run a forward here.
    if mode == "bidirectional" and not any(p.is_meta or hasattr(p, "ds_id") for p in backbone.parameters()):
        check_bidirectional(backbone)


def _set_flags(backbone: nn.Module, mode: str) -> None:
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


@contextlib.contextmanager
def _first_layer_only(decoder: nn.Module):
    """Run `decoder` through its first layer only (cheap on a 7B model); decoders without a `layers`
    list run whole. The mask is built once per forward for all layers, so one layer sees what all see."""
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) < 2:
        yield
        return
    decoder.layers = nn.ModuleList(layers[:1])
    try:
        yield
    finally:
        decoder.layers = layers


def _probe_batches(vocab_size: int, device) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Pairs of rows equal up to position 2 and different after it: a padded batch (the mask is built
    from the padding) and an unpadded one (SDPA may skip the mask and read the modules' flags)."""
    a, b, c, d, e, f = (max(1, vocab_size * k // 7) for k in range(1, 7))
    padded = torch.tensor([[a, b, c, d, 0, 0], [a, b, c, e, f, 0]])
    padded_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]])
    full = torch.tensor([[a, b, c, d], [a, b, c, e]])
    return [("padded batch", padded.to(device), padded_mask.to(device)),
            ("unpadded batch", full.to(device), torch.ones_like(full).to(device))]


@torch.no_grad()
def check_bidirectional(backbone: nn.Module) -> float:
    """Raise `BidirectionalAttentionError` unless a later token changes position 0's output of the first
    decoder layer, in a padded and in an unpadded batch. Returns the smallest relative change seen."""
    decoder = backbone.get_decoder() if hasattr(backbone, "get_decoder") else backbone
    embeddings = backbone.get_input_embeddings()
    training = [(m, m.training) for m in decoder.modules()]
    decoder.eval()  # dropout (LoRA's included) would make the two rows differ for no reason
    changes = []
    try:
        with _first_layer_only(decoder):
            for where, ids, mask in _probe_batches(embeddings.num_embeddings, embeddings.weight.device):
                positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
                hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions,
                                 use_cache=False).last_hidden_state.float()
                scale = hidden[:, 0].abs().max().clamp(min=1e-12)
                change = ((hidden[0, 0] - hidden[1, 0]).abs().max() / scale).item()
                changes.append(change)
                # bf16 rounds at ~4e-3: a real look-ahead moves the state far more than that.
                if not change > 1e-2:
                    impl = getattr(getattr(backbone, "config", None), "_attn_implementation", None)
                    raise BidirectionalAttentionError(
                        f"attention='bidirectional' is not in effect with transformers {transformers.__version__} "
                        f"(attn_implementation={impl!r}): in a {where}, a later token did not change the first "
                        f"token's output (relative change {change:.1e}). This transformers release builds "
                        "attention masks in a way text2token's switch (config.is_causal and the attention "
                        "modules' is_causal flags) does not reach. Use attention='causal', another "
                        "attn_implementation, or a transformers release text2token supports.")
    finally:
        for module, mode in training:
            module.training = mode
    return min(changes)
