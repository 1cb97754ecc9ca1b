"""Data-driven targets (stage 1): the meaningful tokens of the text itself.

The paper's construction: non-word characters become spaces, English stopwords are dropped, the rest
is tokenized with the backbone's tokenizer (no special tokens), and the mass is spread uniformly over
the unique token ids. `idf` weighting (document frequencies over the same corpus) and a `top_k` cap
are this project's options beside it; the default stays the paper's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable

import datasets
import numpy as np
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from .. import __version__
from .schema import (
    TARGET_IDS,
    TARGET_WEIGHTS,
    TEXT,
    TargetInfo,
    attach_info,
    check_text_column,
    target_features,
    tokenizer_fingerprint,
)

logger = logging.getLogger(__name__)

WEIGHTINGS = ("uniform", "idf")
_NON_WORD = re.compile(r"\W+")
_IDS = "_content_ids"


def english_stopwords() -> frozenset[str]:
    """scikit-learn's maintained English stopword list (NLTK's needs a corpus download)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_text(text: str, stopwords: Iterable[str]) -> str:
    """The text with non-word characters turned to spaces and stopwords (any case) removed."""
    return " ".join(w for w in _NON_WORD.sub(" ", text).split() if w.lower() not in stopwords)


def _unique_content_ids(batch, indices, *, tokenizer, stopwords, text_column):
    texts = batch[text_column]
    for row, text in zip(indices, texts):
        if not isinstance(text, str):
            raise TypeError(f"row {row}: field {text_column!r} is {type(text).__name__}, expected a string")
    token_ids = tokenizer([content_text(t, stopwords) for t in texts], add_special_tokens=False)["input_ids"]
    # dict.fromkeys keeps the first occurrence order, so targets are reproducible and readable.
    return {_IDS: [list(dict.fromkeys(ids)) for ids in token_ids], "source_row": indices}


def _weigh(ids: np.ndarray, lengths: np.ndarray, *, weighting: str, idf: np.ndarray | None,
           top_k: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept ids, their weights (summing to 1 per row) and the new row lengths, for all rows at once.

    `ids` is the flat array of every row's unique ids and `lengths` the row sizes (all > 0). Uniform
    keeps each row's first `top_k` ids in text order; idf keeps its `top_k` highest-idf ids (ties in
    text order). Whole-corpus numpy instead of a Python loop per row.
    """
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(len(ids)) - starts
    scores = idf[ids] if weighting == "idf" else np.ones(len(ids))
    if top_k is not None:
        # Rank within each row: by row, then descending score, then text order (stable).
        order = np.lexsort((position, -scores, rows))
        rank = np.empty(len(ids), dtype=np.int64)
        rank[order] = np.arange(len(ids)) - starts[order]
        keep = np.sort(order[rank[order] < top_k]) if weighting == "uniform" else order[rank[order] < top_k]
        ids, scores, rows = ids[keep], scores[keep], rows[keep]
    new_lengths = np.bincount(rows, minlength=len(lengths))
    weights = scores / np.repeat(np.bincount(rows, weights=scores, minlength=len(lengths)), new_lengths)
    return ids, weights.astype(np.float32), new_lengths


def build_data_driven_targets(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    text_column: str = TEXT,
    weighting: str = "uniform",
    top_k: int | None = None,
    stopwords: Iterable[str] | None = None,
    backbone: str = "",
    corpus: str = "",
    batch_size: int = 1000,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Return `dataset`'s texts with their data-driven target distributions as Arrow columns.

    Texts whose target is empty (only stopwords or punctuation) are dropped, counted in the log and
    in the dataset's `TargetInfo.dropped`.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r}: expected one of {WEIGHTINGS}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k}: must be a positive number of tokens")
    check_text_column(dataset, text_column)
    stopwords = frozenset(stopwords) if stopwords is not None else english_stopwords()

    tokenized = dataset.map(
        _unique_content_ids,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        num_proc=num_proc,
        remove_columns=[c for c in dataset.column_names if c != text_column],
        fn_kwargs={"tokenizer": tokenizer, "stopwords": stopwords, "text_column": text_column},
        desc="Data-driven targets: tokenizing",
    )
    if text_column != TEXT:
        tokenized = tokenized.rename_column(text_column, TEXT)

    ids_column = tokenized.data.column(_IDS).combine_chunks()
    lengths = np.diff(np.asarray(ids_column.offsets))
    empty_rows = np.flatnonzero(lengths == 0)
    if len(empty_rows):
        examples = [repr(tokenized[int(i)][TEXT])[:80] for i in empty_rows[:5]]
        logger.warning("%d of %d texts have no content tokens (stopwords/punctuation only) and are skipped; "
                       "for example rows %s: %s", len(empty_rows), len(tokenized), empty_rows[:5].tolist(), examples)
    kept_rows = np.flatnonzero(lengths > 0)
    flat_ids = np.asarray(ids_column.flatten(), dtype=np.int64)  # empty rows contribute nothing here

    idf = None
    vocab_size = len(tokenizer)
    if weighting == "idf":
        df = np.bincount(flat_ids, minlength=vocab_size)
        idf = np.log((len(kept_rows) + 1) / (df + 1)) + 1.0  # smoothed: never zero, no token loses all mass
    ids, weights, new_lengths = _weigh(flat_ids, lengths[kept_rows], weighting=weighting, idf=idf, top_k=top_k)
    offsets = pa.array(np.r_[0, np.cumsum(new_lengths)].astype(np.int32))
    table = pa.table({
        TEXT: tokenized.data.column(TEXT).take(pa.array(kept_rows)),
        TARGET_IDS: pa.ListArray.from_arrays(offsets, pa.array(ids.astype(np.int32))),
        TARGET_WEIGHTS: pa.ListArray.from_arrays(offsets, pa.array(weights)),
        "source_row": tokenized.data.column("source_row").take(pa.array(kept_rows)),
    })
    features = target_features({"source_row": datasets.Value("int64")})
    targets = datasets.Dataset(table.cast(features.arrow_schema), info=datasets.DatasetInfo(features=features))
    info = TargetInfo(
        method="data",
        params={"weighting": weighting, "top_k": top_k, "stopwords": "scikit-learn ENGLISH_STOP_WORDS"
                if stopwords == english_stopwords() else f"custom ({len(stopwords)} words)",
                "text_column": text_column},
        backbone=backbone or getattr(tokenizer, "name_or_path", ""),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        vocab_size=vocab_size,
        corpus=corpus,
        corpus_fingerprint=getattr(dataset, "_fingerprint", ""),
        num_rows=len(targets),
        dropped={"empty_target": int(len(empty_rows))} if len(empty_rows) else {},
        stats=target_stats(targets, tokenizer),
        text2token_version=__version__,
    )
    return attach_info(targets, info)


def target_stats(targets: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, top: int = 20) -> dict:
    """Mean target size and the tokens that carry the most target mass over the corpus."""
    ids = targets.data.column(TARGET_IDS).combine_chunks()
    weights = targets.data.column(TARGET_WEIGHTS).combine_chunks()
    flat_ids = np.asarray(ids.flatten(), dtype=np.int64)
    flat_w = np.asarray(weights.flatten(), dtype=np.float64)
    sizes = np.diff(np.asarray(ids.offsets))
    mass = np.bincount(flat_ids, weights=flat_w, minlength=len(tokenizer)) if len(flat_ids) else np.zeros(1)
    best = np.argsort(-mass)[:top]
    total = max(len(targets), 1)
    return {
        "mean_target_size": float(sizes.mean()) if len(sizes) else 0.0,
        "max_target_size": int(sizes.max()) if len(sizes) else 0,
        "top_tokens": [[tokenizer.decode([int(i)]), round(float(mass[i]) / total, 6)] for i in best if mass[i] > 0],
        "log_vocab_size": math.log(len(tokenizer)),
    }
