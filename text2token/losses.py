"""Training objectives as loss modules handed to `Text2TokenTrainer`, as in sentence-transformers.

Each loss holds the model and is called with the collated batch (`features`); it returns a
`LossOutput`: the scalar loss, its `components` (detached per-batch values the trainer averages into
its logs) and `outputs` (the model output of its main pass). Nothing is left on the module.

- `TokenTargetLoss` ("token_targets", the paper's): `KL(q || softmax(W h))` with sparse targets.
- `SimCSELoss` ("simcse"): unsupervised SimCSE with dropout noise added to the backbone.
- `MNTPLoss` ("mntp"): LLM2Vec's masked next-token prediction.

Losses call the model itself (its `forward`, which runs `embed` and `project`) rather than those
methods, so that under DDP the trainer can hand them the wrapped model and gradients synchronise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .dropout_noise import add_dropout_noise

logger = logging.getLogger(__name__)


def token_target_kl(logits: torch.Tensor, target_ids: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """`KL(q || p)` averaged over the batch (`batchmean`, as the paper's `nn.KLDivLoss`).

    `q` arrives sparse: `target_ids [B, K]` and `target_weights [B, K]`, rows padded with weight 0.
    Gathering the K target log-probabilities equals the dense KL exactly, since every vocabulary
    entry outside the ids has `q_v = 0` and contributes nothing, and it never builds a `[B, V]` q.
    """
    log_p = F.log_softmax(logits.to(torch.float32), dim=-1)
    weights = target_weights.to(torch.float32)
    log_p_targets = log_p.gather(1, target_ids.to(torch.long))
    # xlogy gives 0 * log 0 = 0 for the padding slots.
    per_text = (torch.special.xlogy(weights, weights) - weights * log_p_targets).sum(dim=1)
    return per_text.mean()


def in_batch_contrastive(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy over cosine similarities / temperature: row i of `view_a` must pick row i of
    `view_b` among all rows of the batch (the other texts are the negatives)."""
    similarity = F.normalize(view_a.float(), dim=-1) @ F.normalize(view_b.float(), dim=-1).T
    labels = torch.arange(len(view_a), device=view_a.device)
    return F.cross_entropy(similarity / temperature, labels)


def _unwrap(model: nn.Module) -> nn.Module:
    while True:  # DDP / DeepSpeed keep the model in `.module`, torch.compile in `._orig_mod`
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


@dataclass
class LossOutput:
    """What a loss module returns for one batch."""

    loss: torch.Tensor  # the scalar to minimise
    components: dict[str, torch.Tensor] = field(default_factory=dict)  # detached, for the logs
    outputs: Any = None  # the model output of the main pass (`Trainer.compute_loss(return_outputs=True)`)


class Text2TokenLoss(nn.Module):
    """Base of the loss modules: `forward(features) -> LossOutput`."""

    name: ClassVar[str] = ""
    needs_targets: ClassVar[bool] = False  # whether batches must carry target_ids / target_weights

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    @property
    def encoder(self) -> nn.Module:
        """The `Text2TokenModel` itself, whatever wrapper the trainer handed in as `model`."""
        return _unwrap(self.model)

    @classmethod
    def from_args(cls, model: nn.Module, args) -> "Text2TokenLoss":
        """Build from training arguments (their `<loss>_*` fields); defaults where a field is absent."""
        return cls(model)

    @staticmethod
    def _text_inputs(features: dict) -> dict:
        return {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}


class TokenTargetLoss(Text2TokenLoss):
    """The paper's objective: KL from the text's target distribution `q` to `softmax(W h)`."""

    name = "token_targets"
    needs_targets = True

    def forward(self, features: dict) -> LossOutput:
        if "target_ids" not in features or "target_weights" not in features:
            raise ValueError("loss=token_targets needs target_ids and target_weights in every batch (a target "
                             "dataset); to train on plain text use loss=simcse or loss=mntp")
        outputs = self.model(**self._text_inputs(features), return_logits=True)
        loss = token_target_kl(outputs.logits, features["target_ids"], features["target_weights"])
        return LossOutput(loss, {"kl": loss.detach()}, outputs)


# LLM2Vec's SimCSE stage: `simcse_dropout: 0.3`, passed as `attention_dropout`, in every published
# config (McGill-NLP/llm2vec train_configs/simcse/{Llama2,MetaLlama3,Mistral,Sheared-Llama}.json,
# experiments/run_simcse.py). Hidden dropout is an option, off by default: on SmolLM2-135M at step 0
# (16 glosses, 64 tokens) p = 0.1 on the blocks' outputs leaves the two views of a text at cosine 0.73
# against 0.65 between different texts (even 0.02 gives 0.93 vs 0.72), while attention dropout 0.3
# alone gives 0.90 vs 0.79: views that differ yet still identify their text.
SIMCSE_ATTENTION_DROPOUT = 0.3
SIMCSE_HIDDEN_DROPOUT = 0.0
# SimCSE's similarity temperature (Gao et al.; LLM2Vec's `loss_scale: 20`).
SIMCSE_TEMPERATURE = 0.05


class SimCSELoss(Text2TokenLoss):
    """Unsupervised SimCSE: each text passes twice (as one batch of 2B rows, so every row draws its own
    dropout masks); its two embeddings are positives, the batch's other texts negatives; temperature
    `SIMCSE_TEMPERATURE`. Dropout noise (attention 0.3 as LLM2Vec; hidden dropout on
    request) is added to the backbone on construction
    (`dropout_noise.add_dropout_noise`) and acts in train mode only; `remove_noise()` takes it out."""

    name = "simcse"

    def __init__(self, model: nn.Module, temperature: float = SIMCSE_TEMPERATURE,
                 attention_dropout: float = SIMCSE_ATTENTION_DROPOUT, hidden_dropout: float = SIMCSE_HIDDEN_DROPOUT):
        super().__init__(model)
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: must be positive")
        self.temperature = temperature
        self.noise = add_dropout_noise(self.encoder.backbone, attention_dropout=attention_dropout,
                                       hidden_dropout=hidden_dropout)
        lora = getattr(self.encoder.config, "lora", None) or {}
        if attention_dropout == 0 and hidden_dropout == 0 and not lora.get("lora_dropout"):
            logger.warning("SimCSE without any dropout: its two views of a text are identical and the loss "
                           "teaches nothing")

    @classmethod
    def from_args(cls, model, args) -> "SimCSELoss":
        return cls(model, temperature=getattr(args, "simcse_temperature", SIMCSE_TEMPERATURE),
                   attention_dropout=getattr(args, "simcse_attention_dropout", SIMCSE_ATTENTION_DROPOUT),
                   hidden_dropout=getattr(args, "simcse_hidden_dropout", SIMCSE_HIDDEN_DROPOUT))

    def remove_noise(self) -> None:
        self.noise.remove()

    def forward(self, features: dict) -> LossOutput:
        inputs = self._text_inputs(features)
        outputs = self.model(**{k: torch.cat([v, v]) for k, v in inputs.items()}, return_logits=False)
        view_a, view_b = outputs.embeddings.chunk(2)
        loss = in_batch_contrastive(view_a, view_b, self.temperature)
        with torch.no_grad():
            a, b = F.normalize(view_a.float(), dim=-1), F.normalize(view_b.float(), dim=-1)
            similarity = a @ b.T
            n = len(similarity)
            off_diagonal = (similarity.sum() - similarity.diagonal().sum()) / max(n * (n - 1), 1)
        # positive_cosine near 1.0 with a loss near 0 means the views no longer differ (collapse).
        return LossOutput(loss, {"contrastive": loss.detach(), "positive_cosine": similarity.diagonal().mean(),
                                 "negative_cosine": off_diagonal}, outputs)


# LLM2Vec's MNTP for Llama-architecture backbones: `mask_token_type: "blank"`, `mlm_probability: 0.2`,
# `data_collator_type: "default"` (McGill-NLP/llm2vec train_configs/mntp/{Llama2,MetaLlama3,
# Sheared-Llama}.json); "blank" is the token "_" when the tokenizer has no mask token
# (experiments/run_mntp.py). The default collator is transformers' DataCollatorForLanguageModeling:
# of the chosen tokens 80% become the mask token, 10% a random token, 10% stay.
MNTP_PROBABILITY = 0.2
MNTP_BLANK_TOKEN = "_"


def mask_for_mntp(input_ids: torch.Tensor, attention_mask: torch.Tensor, *, probability: float, mask_id: int,
                  vocab_size: int, special_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose tokens to predict and corrupt them as BERT does. Returns (corrupted ids, chosen [B, S] bool).

    Only real, non-special tokens whose previous position is a real token can be chosen: MNTP
    predicts token i from position i-1's output. At least one token per batch is chosen when any can be."""
    real = attention_mask.bool()
    eligible = real & ~torch.isin(input_ids, torch.tensor(special_ids, dtype=input_ids.dtype,
                                                          device=input_ids.device))
    eligible[:, 0] = False
    eligible[:, 1:] &= real[:, :-1]
    chosen = (torch.rand(input_ids.shape, device=input_ids.device) < probability) & eligible
    if not chosen.any() and eligible.any():
        candidates = eligible.flatten().nonzero().squeeze(1)
        pick = candidates[torch.randint(len(candidates), (1,), device=input_ids.device)]
        chosen.view(-1)[pick] = True
    roll = torch.rand(input_ids.shape, device=input_ids.device)
    corrupted = input_ids.clone()
    corrupted[chosen & (roll < 0.8)] = mask_id
    random = chosen & (roll >= 0.8) & (roll < 0.9)
    corrupted[random] = torch.randint(vocab_size, input_ids.shape, device=input_ids.device,
                                      dtype=input_ids.dtype)[random]
    return corrupted, chosen


class MNTPLoss(Text2TokenLoss):
    """Masked next-token prediction (LLM2Vec): mask a share of the tokens, predict each masked token i
    from the output at position i-1 through the frozen LM head. Logits exist for the masked positions
    only ([masked, vocab], fp32), never for every position. Meant for bidirectional attention."""

    name = "mntp"

    def __init__(self, model: nn.Module, mask_probability: float = MNTP_PROBABILITY,
                 mask_token: str = MNTP_BLANK_TOKEN):
        super().__init__(model)
        if not 0 < mask_probability < 1:
            raise ValueError(f"mask_probability={mask_probability}: must be in (0, 1)")
        self.mask_probability = mask_probability
        encoder = self.encoder
        tokenizer = encoder.tokenizer
        # As LLM2Vec: the tokenizer's own mask token when it has one, else the "blank" token.
        token = tokenizer.mask_token or mask_token
        mask_id = tokenizer.convert_tokens_to_ids(token)
        if mask_id is None or (mask_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise ValueError(f"mntp_mask_token={token!r} is not a token of this tokenizer: choose one of its tokens")
        self.mask_token, self.mask_id = token, int(mask_id)
        self.vocab_size = min(len(tokenizer), encoder.config.lm_config.vocab_size)
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        if encoder.config.attention != "bidirectional":
            logger.warning("MNTP with attention=%r: LLM2Vec trains it with bidirectional attention",
                           encoder.config.attention)

    @classmethod
    def from_args(cls, model, args) -> "MNTPLoss":
        return cls(model, mask_probability=getattr(args, "mntp_probability", MNTP_PROBABILITY),
                   mask_token=getattr(args, "mntp_mask_token", MNTP_BLANK_TOKEN))

    def forward(self, features: dict) -> LossOutput:
        input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        corrupted, chosen = mask_for_mntp(input_ids, attention_mask, probability=self.mask_probability,
                                          mask_id=self.mask_id, vocab_size=self.vocab_size,
                                          special_ids=self.special_ids)
        outputs = self.model(input_ids=corrupted, attention_mask=attention_mask, return_logits=False,
                             return_hidden_states=True)
        rows, positions = chosen.nonzero(as_tuple=True)
        if len(rows) == 0:  # nothing maskable in the batch (every text empty): a zero that keeps the graph
            loss = outputs.last_hidden_state.sum() * 0.0
            return LossOutput(loss, {"mntp": loss.detach(), "masked_accuracy": loss.detach(),
                                     "masked_tokens": loss.detach()}, outputs)
        logits = self.encoder.project(outputs.last_hidden_state[rows, positions - 1])  # [masked, vocab]
        labels = input_ids[rows, positions]
        loss = F.cross_entropy(logits, labels)
        return LossOutput(loss, {"mntp": loss.detach(),
                                 "masked_accuracy": (logits.detach().argmax(-1) == labels).float().mean(),
                                 "masked_tokens": torch.tensor(float(len(rows)), device=loss.device)}, outputs)


LOSSES: dict[str, type[Text2TokenLoss]] = {cls.name: cls for cls in (TokenTargetLoss, SimCSELoss, MNTPLoss)}


def loss_class(name: str) -> type[Text2TokenLoss]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"loss={name!r}: expected one of {tuple(LOSSES)}") from None


def build_loss(name: str, model: nn.Module, args=None) -> Text2TokenLoss:
    """The loss a recipe names (`loss: token_targets | simcse | mntp`), its options from `args`."""
    return loss_class(name).from_args(model, args)
