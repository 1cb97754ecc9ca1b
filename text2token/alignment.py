"""How well an embedding's top vocabulary tokens line up with the text's own tokens.

The metrics of "A Text is Worth Several Tokens" (arXiv 2406.17378), with `T` the set of a text's
content token ids: the data-driven target's tokens (`content_token_ids`: `[\W_]+` to spaces,
NLTK stopwords dropped; then the model's tokenizer, special and whitespace pieces dropped) so that the metric
asks about the same tokens stage 1 trains towards, and `top-n` the embedding's n most probable
tokens under `softmax(W h)`:

- hit@k: the share of texts with at least one top-k token in `T`;
- local alignment: the mean over texts of |top-|T| ∩ T| / |T|;
- global alignment: over the whole sample, sum of |top-|T| ∩ T| / sum of |T| (long texts weigh more).

Texts with an empty `T` (only stopwords or punctuation) are left out and counted.

`AlignmentCallback` logs them on a fixed held-out sample every N steps into the trainer's log
history, next to the KL loss, and plots both at the end of training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase, TrainerCallback

from .explain import topk_tokens
from .targets.data_driven import content_token_ids, resolve_stopwords
from .targets.defaults import TARGET_DEFAULTS

logger = logging.getLogger(__name__)

LOG_PREFIX = "align_"


# ----------------------------------------------------------------------------- pure metrics
@dataclass(frozen=True)
class AlignmentScores:
    k: int
    hit_at_k: float
    local_alignment: float
    global_alignment: float
    num_texts: int  # texts scored
    num_skipped: int  # texts without content tokens

    def to_logs(self, prefix: str = LOG_PREFIX) -> dict[str, float]:
        """Flat metrics for a trainer log: hit@k names its k."""
        return {f"{prefix}hit@{self.k}": self.hit_at_k, f"{prefix}local": self.local_alignment,
                f"{prefix}global": self.global_alignment}


def content_token_sets(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                       stopwords: str | Iterable[str] | None = None, max_length: int | None = None) -> list[frozenset[int]]:
    """`T` for each text: the unique ids of its data-driven content tokens (built as stage-1 targets;
    stopwords None: their default list)."""
    words, _ = resolve_stopwords(TARGET_DEFAULTS.stopwords if stopwords is None else stopwords)
    return [frozenset(row) for row in content_token_ids(tokenizer, list(texts), words, max_length=max_length)]


def alignment_scores(ranked_ids: Sequence[Sequence[int]], targets: Sequence[frozenset[int] | set[int]],
                     k: int = 10) -> AlignmentScores:
    """The three metrics from each text's token ids ranked by probability (at least max(k, |T|) of them)."""
    if len(ranked_ids) != len(targets):
        raise ValueError(f"{len(ranked_ids)} ranked rows for {len(targets)} target sets")
    hits, local, matched, total, skipped = [], [], 0, 0, 0
    for row, (ranked, target) in enumerate(zip(ranked_ids, targets)):
        if not target:
            skipped += 1
            continue
        if len(ranked) < max(k, len(target)):
            raise ValueError(f"row {row}: {len(ranked)} ranked tokens, need max(k={k}, |T|={len(target)})")
        hits.append(any(int(i) in target for i in ranked[:k]))
        overlap = len({int(i) for i in ranked[: len(target)]} & target)
        local.append(overlap / len(target))
        matched += overlap
        total += len(target)
    if not hits:
        raise ValueError("no text has content tokens: alignment is undefined")
    return AlignmentScores(k=k, hit_at_k=float(np.mean(hits)), local_alignment=float(np.mean(local)),
                           global_alignment=matched / total, num_texts=len(hits), num_skipped=skipped)


def compute_alignment(model, texts: Sequence[str], k: int = 10, batch_size: int = 32,
                      targets: Sequence[frozenset[int]] | None = None) -> AlignmentScores:
    """The metrics of `model`'s embeddings of `texts` (`targets` precomputed, or from `model.tokenizer`)."""
    targets = content_token_sets(model.tokenizer, texts, max_length=model.config.max_length) if targets is None else targets
    depth = max([k, *(len(t) for t in targets)])
    # At the training length: the metric compares with the tokens training sees.
    ranked, _ = topk_tokens(model, texts, depth, batch_size, max_length=model.config.max_length)
    return alignment_scores(ranked.tolist(), targets, k)


# ----------------------------------------------------------------------------- training callback
def hold_out(dataset, n: int = 64, seed: int = 0, text_column: str = "text"):
    """Split `n` random rows off a `datasets.Dataset` for the callback: (training rows, held-out texts).
    Same seed, same split on every process."""
    if not 0 < n < len(dataset):
        raise ValueError(f"cannot hold out {n} of {len(dataset)} rows and still train on some")
    order = np.random.default_rng(seed).permutation(len(dataset))
    held = dataset.select(np.sort(order[:n]))[text_column]
    return dataset.select(np.sort(order[n:])), list(held)


class AlignmentCallback(TrainerCallback):
    """Every `every_n_steps` optimizer steps (and once before the first), score the model on `texts`
    and put hit@k / local / global alignment into the trainer's log entry of that step, beside the
    loss; at the end of training save a PNG of these curves with the loss to `plot_path`.

    Cheap by design: a small fixed sample (e.g. 64 texts), one forward pass under inference mode,
    train mode restored after. Every process scores its own replica (fine under DDP; not meant for
    parameter-sharded FSDP/ZeRO-3). The numbers join the trainer's log entry in `on_log`, so only
    callbacks after this one see them: put it first (`trainer.callback_handler.callbacks.insert(0, cb)`,
    as recipes/train.py does) and the `report_to` trackers (TensorBoard, trackio...) log them beside the
    loss; `trainer.state.log_history` always holds them, the step-0 measurement included.
    """

    def __init__(self, texts: Sequence[str], every_n_steps: int, k: int = 10, plot_path: str | Path | None = None,
                 batch_size: int = 32):
        texts = list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("AlignmentCallback needs a non-empty list of held-out texts (str)")
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps}: must be at least 1")
        self.texts, self.every_n_steps, self.k, self.batch_size = texts, every_n_steps, k, batch_size
        self.plot_path = Path(plot_path) if plot_path is not None else None
        self._targets: list[frozenset[int]] | None = None
        self._pending: tuple[int, dict[str, float]] | None = None

    def _measure(self, model) -> dict[str, float]:
        model = model if hasattr(model, "encode") else model.module  # a DDP/DeepSpeed wrapper
        was_training = model.training
        try:
            if self._targets is None:  # the tokenizer does not change during training: tokenize once
                self._targets = content_token_sets(model.tokenizer, self.texts, max_length=model.config.max_length)
            return compute_alignment(model, self.texts, self.k, self.batch_size, self._targets).to_logs()
        finally:
            model.train(was_training)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 and model is not None:  # the untrained starting point, for the curve
            state.log_history.append({**self._measure(model), "step": 0})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and state.global_step % self.every_n_steps == 0:
            self._pending = (state.global_step, self._measure(model))
            control.should_log = True  # so the trainer logs the loss of this very step too

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending is None or self._pending[0] != state.global_step:
            return
        metrics = self._pending[1]
        self._pending = None
        if logs is not None:
            logs.update(metrics)  # callbacks after this one (console progress) print them
        last = state.log_history[-1] if state.log_history else None
        if last is not None and last.get("step") == state.global_step:
            last.update(metrics)
        else:
            state.log_history.append({**metrics, "step": state.global_step})

    def on_train_end(self, args, state, control, **kwargs):
        if self._pending is not None:  # measured but the trainer never logged that step
            state.log_history.append({**self._pending[1], "step": self._pending[0]})
            self._pending = None
        if self.plot_path is not None and state.is_world_process_zero:
            plot_alignment(state.log_history, self.plot_path, self.k)


def plot_alignment(log_history: Sequence[dict], path: str | Path, k: int = 10) -> Path:
    """Loss (left axis) and the alignment metrics (right axis, 0..1) against the training step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no display needed

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    loss_ax = fig.add_subplot()
    loss = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    if loss:
        loss_ax.plot(*zip(*loss), color="black", label="KL loss")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("KL loss")
    align_ax = loss_ax.twinx()
    for key, label in ((f"{LOG_PREFIX}hit@{k}", f"hit@{k}"), (f"{LOG_PREFIX}local", "local alignment"),
                       (f"{LOG_PREFIX}global", "global alignment")):
        points = [(e["step"], e[key]) for e in log_history if key in e]
        if points:
            align_ax.plot(*zip(*points), marker="o", label=label)
    align_ax.set_ylim(-0.02, 1.02)  # a little room so points at 0 stay visible
    align_ax.set_ylabel("alignment")
    handles = [h for ax in (loss_ax, align_ax) for h in ax.get_legend_handles_labels()[0]]
    align_ax.legend(handles, [h.get_label() for h in handles], fontsize="small", loc="center right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


__all__ = ["AlignmentCallback", "AlignmentScores", "alignment_scores", "compute_alignment", "content_token_sets",
           "hold_out", "plot_alignment"]
