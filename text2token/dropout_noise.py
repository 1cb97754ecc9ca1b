"""Dropout noise inside a pretrained decoder, for SimCSE's two views of one text.

Unsupervised SimCSE needs the encoder to be stochastic in train mode. Decoder LLMs such as SmolLM2 and
Llama are trained without dropout (attention_dropout 0.0, no hidden dropout), and LoRA's own dropout
sits before `lora_B`, which starts at zero, so without this the two views are identical at step 0.

LLM2Vec's SimCSE stage turns on the backbone's attention dropout (`simcse_dropout`, passed as
`attention_dropout`). This adds that, plus BERT-style hidden dropout on the output of each layer's
attention and MLP blocks before they join the residual stream (where SimCSE's BERT had it), through
forward hooks: no forked modeling code. Both act only while the hooked module is in train mode.
"""

from __future__ import annotations

import contextlib

import torch.nn.functional as F
from torch import nn


class DropoutNoise:
    """Installed on a backbone by `add_dropout_noise`; `remove()` puts the backbone back as it was."""

    def __init__(self, handles: list, attention_modules: list[tuple[nn.Module, float]],
                 attention_dropout: float, hidden_dropout: float):
        self._handles = handles
        self._attention = attention_modules  # (module, its original rate)
        self.attention_dropout = attention_dropout
        self.hidden_dropout = hidden_dropout
        self.active = True  # read by the hidden-dropout hooks

    @contextlib.contextmanager
    def suspended(self):
        """Run without the noise for a while (e.g. another objective's step on the same model)."""
        self.active = False
        for module, rate in self._attention:
            module.attention_dropout = rate
        try:
            yield
        finally:
            self.active = True
            for module, _ in self._attention:
                module.attention_dropout = self.attention_dropout

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for module, rate in self._attention:
            module.attention_dropout = rate
        self._handles, self._attention = [], []


def _check_rate(name: str, rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name}={rate}: must be in [0, 1)")
    return rate


def _decoder_layers(backbone: nn.Module) -> nn.ModuleList:
    decoder = backbone.get_decoder() if hasattr(backbone, "get_decoder") else backbone
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        raise ValueError(f"{type(backbone).__name__}: no decoder `layers` list to add SimCSE dropout noise to")
    return layers


def _hidden_dropout_hook(rate: float, noise: list):
    def hook(module, args, output):
        if not module.training or not noise[0].active:
            return None
        if isinstance(output, tuple):  # attention blocks return (hidden, weights, ...)
            return (F.dropout(output[0], rate, training=True), *output[1:])
        return F.dropout(output, rate, training=True)
    return hook


def add_dropout_noise(backbone: nn.Module, *, attention_dropout: float, hidden_dropout: float) -> DropoutNoise:
    """Turn on attention dropout (the attention modules' `attention_dropout`, which transformers' Llama,
    Mistral, Qwen2 ... read in train mode) and hidden dropout on every decoder layer's attention and MLP
    outputs. The backbone's config is left as it was, so a saved model does not carry training noise
    into a later fine-tuning run."""
    attention_dropout = _check_rate("attention_dropout", attention_dropout)
    hidden_dropout = _check_rate("hidden_dropout", hidden_dropout)
    layers = _decoder_layers(backbone)
    handles, attention, noise = [], [], []  # `noise` is filled below; the hooks read its `active` flag
    for index, layer in enumerate(layers):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if attn is None or mlp is None:
            raise ValueError(f"decoder layer {index} ({type(layer).__name__}) has no self_attn/mlp block to add "
                             "SimCSE dropout noise to")
        if attention_dropout > 0:
            if not isinstance(getattr(attn, "attention_dropout", None), (int, float)):
                raise ValueError(f"{type(attn).__name__} has no attention_dropout setting: use "
                                 "simcse_attention_dropout=0 and rely on simcse_hidden_dropout")
            attention.append((attn, attn.attention_dropout))
            attn.attention_dropout = attention_dropout
        if hidden_dropout > 0:
            handles += [attn.register_forward_hook(_hidden_dropout_hook(hidden_dropout, noise)),
                        mlp.register_forward_hook(_hidden_dropout_hook(hidden_dropout, noise))]
    noise.append(DropoutNoise(handles, attention, attention_dropout, hidden_dropout))
    return noise[0]
