"""Token-target loss: KL(q || softmax(z)) with q given sparsely as (ids, weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TokenTargetKLLoss(nn.Module):
    """`KL(q || p)` averaged over the batch (`batchmean`, as the paper's `nn.KLDivLoss`).

    `q` arrives sparse: `target_ids [B, K]` and `target_weights [B, K]`, rows padded with weight 0.
    Gathering the K target log-probabilities equals the dense KL exactly, since every vocabulary
    entry outside the ids has `q_v = 0` and contributes nothing, and it never builds a `[B, V]` q.
    """

    def forward(self, logits: torch.Tensor, target_ids: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.to(torch.float32), dim=-1)
        weights = target_weights.to(torch.float32)
        log_p_targets = log_p.gather(1, target_ids.to(torch.long))
        # xlogy gives 0 * log 0 = 0 for the padding slots.
        per_text = (torch.special.xlogy(weights, weights) - weights * log_p_targets).sum(dim=1)
        return per_text.mean()


class SimCSELoss(nn.Module):
    """Unsupervised SimCSE: two dropout views of each text are positives, the other texts of the
    batch negatives; cross-entropy over cosine similarities divided by a temperature (0.05)."""

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: must be positive")
        self.temperature = temperature

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
        similarity = F.normalize(view_a.float(), dim=-1) @ F.normalize(view_b.float(), dim=-1).T
        labels = torch.arange(len(view_a), device=view_a.device)
        return F.cross_entropy(similarity / self.temperature, labels)
