"""Pool a sequence of hidden states into one vector, the same way whatever side the padding is on."""

from __future__ import annotations

import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the hidden states of non-padding tokens, accumulated in fp32."""
    mask = attention_mask.to(torch.float32).unsqueeze(-1)
    summed = (hidden.to(torch.float32) * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1.0)


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last non-padding token.

    The index is the highest position whose mask is 1, which is right for left *and* right padding
    (a plain `hidden[:, -1]` is only right for left padding).
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.to(torch.long) * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].to(torch.float32)


POOLERS = {"mean": mean_pool, "last": last_token_pool}


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    try:
        pooler = POOLERS[mode]
    except KeyError:
        raise ValueError(f"pooling={mode!r}: expected one of {tuple(POOLERS)}") from None
    return pooler(hidden, attention_mask)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so a left-padded row sees the positions of its
    right-padded twin (backbones otherwise number padding slots too)."""
    return (attention_mask.to(torch.long).cumsum(dim=1) - 1).clamp(min=0)
