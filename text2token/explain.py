"""Read an embedding through the LM head: each text's top vocabulary tokens, split into the tokens the
text itself contains and the ones the model derives beyond it; one model or two side by side.

A token counts as *in the text* when its id is among the ids of the text tokenized on its own (no
special tokens, no prompt), or when its decoded form, stripped and lowercased, is one of the text's
words (so ' Cat' and 'cat' both match "The cat"). Every other top token is *derived*.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from .configuration import Text2TokenConfig
from .devices import place_model
from .modeling import Text2TokenModel
from .value_checks import check_range

_WORD = re.compile(r"\w+")
IN_TEXT_MARK = "*"


# ----------------------------------------------------------------------------- top tokens
@torch.inference_mode()
def topk_from_embeddings(model, embeddings: torch.Tensor | np.ndarray, k: int,
                         chunk_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Top-k token ids [n, k] and probabilities [n, k] of `softmax(W h)` for pooled embeddings `h`.

    Chunked so that only [chunk, vocab] logits exist at a time, whatever the number of texts.
    """
    check_range("k", k, low=1, integer=True)
    embeddings = torch.as_tensor(embeddings)
    vocab_size = model.lm_head.weight.shape[0]
    k = min(k, vocab_size)
    ids, probs = [np.empty((0, k), np.int64)], [np.empty((0, k), np.float32)]
    for start in range(0, len(embeddings), chunk_size):
        h = embeddings[start : start + chunk_size].to(model.device)
        values, top = model.project(h).softmax(-1).topk(k, dim=-1)
        ids.append(top.cpu().numpy())
        probs.append(values.float().cpu().numpy())
    return np.concatenate(ids), np.concatenate(probs)


def topk_tokens(model, texts: Sequence[str], k: int, batch_size: int = 32,
                max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k token ids and probabilities of each text's embedding (eval mode; train mode is restored).
    Texts are truncated at `max_length` (default: the model's inference length, as `encode`)."""
    embeddings = model.encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False,
                              max_length=max_length)
    return topk_from_embeddings(model, embeddings, k)


# ----------------------------------------------------------------------------- structured results
@dataclass(frozen=True)
class TokenScore:
    token_id: int
    token: str  # decoded, leading space kept
    prob: float
    in_text: bool


@dataclass(frozen=True)
class Explanation:
    """One text's top-k tokens, most probable first."""

    text: str
    tokens: tuple[TokenScore, ...]

    @property
    def in_text(self) -> list[TokenScore]:
        return [t for t in self.tokens if t.in_text]

    @property
    def derived(self) -> list[TokenScore]:
        return [t for t in self.tokens if not t.in_text]

    @property
    def in_text_mass(self) -> float:
        return float(sum(t.prob for t in self.in_text))

    @property
    def derived_mass(self) -> float:
        return float(sum(t.prob for t in self.derived))


def in_text_flags(tokenizer: PreTrainedTokenizerBase, text: str, token_ids: Sequence[int]) -> list[bool]:
    """For each token id: does the text contain it (same id, or same word once stripped and lowercased)?"""
    own_ids = set(tokenizer(text, add_special_tokens=False)["input_ids"])
    words = {w.lower() for w in _WORD.findall(text)}
    return [int(i) in own_ids or tokenizer.decode([int(i)]).strip().lower() in words for i in token_ids]


def explain(model, texts: Sequence[str], k: int = 10, batch_size: int = 32,
            max_length: int | None = None) -> list[Explanation]:
    """Each text's top-k tokens under `model`, marked in-text or derived."""
    ids, probs = topk_tokens(model, texts, k, batch_size, max_length)
    tokenizer = model.tokenizer
    out = []
    for text, row_ids, row_probs in zip(texts, ids.tolist(), probs.tolist()):
        flags = in_text_flags(tokenizer, text, row_ids)
        out.append(Explanation(text, tuple(TokenScore(i, tokenizer.decode([i]), p, f)
                                           for i, p, f in zip(row_ids, row_probs, flags))))
    return out


def compare(model_a, model_b, texts: Sequence[str], k: int = 10, batch_size: int = 32,
            max_length: int | None = None) -> list[tuple[Explanation, Explanation]]:
    """The same texts explained by two models (e.g. stage 1 vs stage 2, untrained vs trained)."""
    return list(zip(explain(model_a, texts, k, batch_size, max_length),
                    explain(model_b, texts, k, batch_size, max_length)))


# ----------------------------------------------------------------------------- loading
def is_text2token_model(path: str) -> bool:
    config, _ = PretrainedConfig.get_config_dict(path)
    return config.get("model_type") == Text2TokenConfig.model_type


def load_model(path: str, like: Text2TokenConfig | None = None) -> Text2TokenModel:
    """A saved Text2Token model, or a plain causal LM wrapped with `like`'s pooling, attention, prompt
    and max length (mean pooling when `like` is None), so an untrained backbone reads the same way."""
    if is_text2token_model(path):
        model = Text2TokenModel.from_pretrained(path, use_safetensors=True)
    else:
        settings = {} if like is None else {"pooling": like.pooling, "attention": like.attention,
                                            "prompt": like.prompt, "max_length": like.max_length}
        model = Text2TokenModel.from_backbone(path, **settings)
    return place_model(model, purpose=f"explaining with {path}")


def load_pair(path_a: str, path_b: str) -> tuple[Text2TokenModel, Text2TokenModel]:
    """Load two models to compare; a plain causal LM takes its settings from the Text2Token one."""
    a = load_model(path_a) if is_text2token_model(path_a) else None
    b = load_model(path_b, like=a.config if a is not None else None)
    if a is None:
        a = load_model(path_a, like=b.config)
    return a, b


# ----------------------------------------------------------------------------- rendering
def _cell(token: TokenScore) -> str:
    mark = IN_TEXT_MARK if token.in_text else " "
    return f"{mark} {token.token!r:<18} {token.prob:.4f}"


def _summary(explanation: Explanation) -> str:
    n = len(explanation.tokens)
    return (f"in text {len(explanation.in_text)}/{n} (p={explanation.in_text_mass:.3f}), "
            f"derived {len(explanation.derived)}/{n} (p={explanation.derived_mass:.3f})")


def render(explanations: Sequence[Explanation]) -> str:
    """One block per text: rank, in-text mark, token, probability, then the in-text/derived split."""
    lines = [f"({IN_TEXT_MARK} = the token appears in the text; unmarked = derived beyond it)"]
    for explanation in explanations:
        lines.append("")
        lines.append(explanation.text)
        lines.extend(f"  {rank:>3} {_cell(token)}" for rank, token in enumerate(explanation.tokens, 1))
        lines.append(f"      {_summary(explanation)}")
    return "\n".join(lines)


def render_comparison(pairs: Sequence[tuple[Explanation, Explanation]], names: tuple[str, str]) -> str:
    """Two columns per text, model A left and model B right, rank by rank."""
    width = max(len(_cell(TokenScore(0, "x" * 16, 0.0, False))), *(len(_summary(e)) for pair in pairs for e in pair),
                len(names[0]))
    lines = [f"({IN_TEXT_MARK} = the token appears in the text; unmarked = derived beyond it)"]
    for a, b in pairs:
        lines.append("")
        lines.append(a.text)
        lines.append(f"  {'#':>3} {names[0]:<{width}} | {names[1]}")
        for rank in range(max(len(a.tokens), len(b.tokens))):
            left = _cell(a.tokens[rank]) if rank < len(a.tokens) else ""
            right = _cell(b.tokens[rank]) if rank < len(b.tokens) else ""
            lines.append(f"  {rank + 1:>3} {left:<{width}} | {right}")
        lines.append(f"      {_summary(a):<{width}} | {_summary(b)}")
    return "\n".join(lines)
