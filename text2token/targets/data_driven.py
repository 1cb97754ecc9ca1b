"""Data-driven targets (stage 1): the meaningful tokens of the text itself.

As the authors' code builds them: `[\W_]+` becomes a space; words whose lowercase form is in NLTK's
English stopword list (plus `! , . ?`) are dropped; the rest is tokenized with the backbone's tokenizer,
truncated at the model's training length; special tokens and whitespace-only pieces are dropped; the
mass is spread uniformly over the unique token ids. Other stopword lists (`sklearn`, `none`, a file
or list of the user's own words), `idf` weighting (document frequencies over the same corpus) and a
`top_k` cap are this project's options beside it; the defaults stay the paper's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from .._version import __version__
from .defaults import TARGET_DEFAULTS
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
STOPWORD_LISTS = ("nltk", "sklearn", "none")
# Underscores count as separators too: `\W` alone keeps them ("snake_case" would stay one word).
_NON_WORD = re.compile(r"[\W_]+")
_IDS = "_content_ids"
# The authors add these to NLTK's list; after `[\W_]+` they cannot occur, but the list stays theirs.
_EXTRA_NLTK = ("!", ",", ".", "?")


def nltk_english_stopwords() -> frozenset[str]:
    """NLTK's English stopword list, shipped as package data (see resources/stopwords/README.md)."""
    text = resources.files("text2token.resources").joinpath("stopwords/nltk_english.txt").read_text("utf-8")
    return frozenset(text.split()) | frozenset(_EXTRA_NLTK)


def sklearn_english_stopwords() -> frozenset[str]:
    """scikit-learn's English list: larger, drops content words NLTK's keeps (fire, system, name...)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def read_stopword_file(path: str | os.PathLike) -> frozenset[str]:
    """The words of a stopword file: whitespace-separated, any case, `#` starts a comment."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"stopword file {os.fspath(path)}: not UTF-8 text (byte {exc.start})") from None
    return frozenset(w.lower() for line in text.splitlines() for w in line.split("#", 1)[0].split())


def resolve_stopwords(stopwords: str | os.PathLike | Iterable[str]) -> tuple[frozenset[str], str]:
    """The word set and the name recorded in `TargetInfo` for a list name, a file of words, or a list
    of words. The name of a user's own list is its size and digest, so the target spec's key (and so
    reuse) follows the words themselves, not a file name."""
    if isinstance(stopwords, (str, os.PathLike)):
        name = os.fspath(stopwords)
        if name == "nltk":
            return nltk_english_stopwords(), "nltk"
        if name == "sklearn":
            return sklearn_english_stopwords(), "sklearn"
        if name == "none":
            return frozenset(), "none"
        if not os.path.isfile(name):
            raise ValueError(f"stopwords={name!r}: expected one of {STOPWORD_LISTS}, a file of words (there is "
                             f"no such file) or a list of words")
        words = read_stopword_file(name)
    else:
        words = frozenset(w.lower() for w in stopwords)
    digest = hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()[:12]
    return words, f"custom ({len(words)} words, sha256 {digest})"


def content_text(text: str, stopwords: Iterable[str]) -> str:
    """The text with `[\W_]+` turned to spaces and stopwords (any case) removed."""
    return " ".join(w for w in _NON_WORD.sub(" ", text).split() if w.lower() not in stopwords)


_DROPPABLE: dict[str, np.ndarray] = {}


def droppable_token_mask(tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """True for ids that never make a target: special tokens and pieces that decode to whitespace only
    (SentencePiece's lone "▁", a byte-level lone space, newline pieces), for any tokenizer.
    Cached per vocabulary: decoding every id takes a second or two on a 128k vocabulary."""
    key = tokenizer_fingerprint(tokenizer)
    if key not in _DROPPABLE:
        vocab_size = len(tokenizer)
        pieces = tokenizer.batch_decode([[i] for i in range(vocab_size)], clean_up_tokenization_spaces=False)
        mask = np.fromiter((not piece.strip() for piece in pieces), dtype=bool, count=vocab_size)
        mask[[i for i in tokenizer.all_special_ids if 0 <= i < vocab_size]] = True
        _DROPPABLE[key] = mask
    return _DROPPABLE[key]


def content_token_ids(tokenizer: PreTrainedTokenizerBase, texts: list[str], stopwords: frozenset[str], *,
                      max_length: int | None = None, droppable: np.ndarray | None = None) -> list[list[int]]:
    """Each text's unique content token ids in text order: the ids a data-driven target spreads over."""
    droppable = droppable_token_mask(tokenizer) if droppable is None else droppable
    token_ids = tokenizer([content_text(t, stopwords) for t in texts], add_special_tokens=False,
                          truncation=max_length is not None, max_length=max_length)["input_ids"]
    # dict.fromkeys keeps the first occurrence order, so targets are reproducible and readable.
    return [list(dict.fromkeys(i for i in ids if not droppable[i])) for ids in token_ids]


def _content_ids_batch(batch: pa.Table, indices: list[int], *, tokenizer, stopwords, text_column, max_length,
                       droppable) -> pa.Table:
    """One `datasets.map` batch: each text's unique content ids; rows without any are left out here
    (counted from `source_row` afterwards), so no pass ever holds more than one batch."""
    texts = batch.column(text_column).to_pylist()
    for row, text in zip(indices, texts):
        if not isinstance(text, str):
            raise TypeError(f"row {row}: field {text_column!r} is {type(text).__name__}, expected a string")
    ids = content_token_ids(tokenizer, texts, stopwords, max_length=max_length, droppable=droppable)
    keep = [i for i, row_ids in enumerate(ids) if row_ids]
    lengths = np.fromiter((len(ids[i]) for i in keep), dtype=np.int64, count=len(keep))
    flat = np.fromiter((t for i in keep for t in ids[i]), dtype=np.int32, count=int(lengths.sum()))
    offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
    return pa.table({TEXT: batch.column(text_column).take(pa.array(keep, pa.int64())),
                     _IDS: pa.ListArray.from_arrays(offsets, pa.array(flat)),
                     "source_row": pa.array(np.asarray(indices, dtype=np.int64)[keep])})


def _weigh_batch(batch: pa.Table, *, weighting: str, idf: np.ndarray | None, top_k: int | None) -> pa.Table:
    """One `datasets.map` batch: the kept ids and their weights (see `_weigh`) as target columns."""
    column = batch.column(_IDS).combine_chunks()
    lengths = np.diff(np.asarray(column.offsets))
    ids, weights, new_lengths = _weigh(np.asarray(column.flatten(), dtype=np.int64), lengths, weighting=weighting,
                                       idf=idf, top_k=top_k)
    offsets = pa.array(np.r_[0, np.cumsum(new_lengths)].astype(np.int32))
    return pa.table({TEXT: batch.column(TEXT), TARGET_IDS: pa.ListArray.from_arrays(offsets, pa.array(ids.astype(np.int32))),
                     TARGET_WEIGHTS: pa.ListArray.from_arrays(offsets, pa.array(weights)),
                     "source_row": batch.column("source_row")})


def _document_frequencies(tokenized: datasets.Dataset, vocab_size: int, batch_size: int) -> np.ndarray:
    df = np.zeros(vocab_size, dtype=np.int64)
    for batch in tokenized.with_format("arrow").iter(batch_size=batch_size):
        df += np.bincount(np.asarray(batch.column(_IDS).combine_chunks().flatten(), dtype=np.int64),
                          minlength=vocab_size)
    return df


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
    weighting: str | None = None,
    top_k: int | None = None,
    stopwords: str | os.PathLike | Iterable[str] | None = None,
    max_length: int | None = None,
    backbone: str = "",
    corpus: str = "",
    batch_size: int = 1000,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Return `dataset`'s texts with their data-driven target distributions as Arrow columns.

    `stopwords`: "nltk" (the paper's), "sklearn", "none", a file of words, or a list of words.
    `max_length`: the model's training length; the target tokenization is truncated there, so no
    target names a token the model never sees (None: no truncation). Texts whose target is empty
    (only stopwords or punctuation) are dropped, counted in the log and in the dataset's
    `TargetInfo.dropped`.
    """
    weighting = TARGET_DEFAULTS.weighting if weighting is None else weighting
    stopwords = TARGET_DEFAULTS.stopwords if stopwords is None else stopwords
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r}: expected one of {WEIGHTINGS}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k}: must be a positive number of tokens")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length={max_length}: must be a positive number of tokens")
    check_text_column(dataset, text_column)
    stopwords, stopwords_name = resolve_stopwords(stopwords)

    # Two passes of `datasets.map`, batch by batch (worker processes with `num_proc`), each written to
    # Arrow files rather than held in memory: memory stays bounded by a batch whatever the corpus size.
    tokenized = dataset.select_columns([text_column]).with_format("arrow").map(
        _content_ids_batch,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        num_proc=num_proc,
        features=datasets.Features({TEXT: datasets.Value("string"), _IDS: datasets.Sequence(datasets.Value("int32")),
                                    "source_row": datasets.Value("int64")}),
        remove_columns=[text_column],
        fn_kwargs={"tokenizer": tokenizer, "stopwords": stopwords, "text_column": text_column,
                   "max_length": max_length, "droppable": droppable_token_mask(tokenizer)},
        desc="Data-driven targets: tokenizing",
    )
    dropped = len(dataset) - len(tokenized)
    if len(dataset) and not len(tokenized):  # nothing to weigh: name why rather than fail on missing columns
        examples = [repr(text)[:80] for text in dataset.select(range(min(3, len(dataset))))[text_column]]
        raise ValueError(f"none of the {len(dataset)} texts has a content token: all are stopwords or punctuation "
                         f"(stopwords={stopwords_name!r}; e.g. {', '.join(examples)}). Use a corpus of real text, or "
                         f"another stopword list (--stopwords none)")
    if dropped:
        kept = np.zeros(len(dataset), dtype=bool)
        for batch in tokenized.with_format("arrow").iter(batch_size=100_000):
            kept[np.asarray(batch.column("source_row"))] = True
        empty_rows = np.flatnonzero(~kept)[:5]
        examples = [repr(dataset[int(i)][text_column])[:80] for i in empty_rows]
        logger.warning("%d of %d texts have no content tokens (stopwords/punctuation only) and are skipped; "
                       "for example rows %s: %s", dropped, len(dataset), empty_rows.tolist(), examples)

    idf = None
    vocab_size = len(tokenizer)
    if weighting == "idf":
        df = _document_frequencies(tokenized, vocab_size, batch_size=100_000)
        idf = np.log((len(tokenized) + 1) / (df + 1)) + 1.0  # smoothed: never zero, no token loses all mass
    features = target_features({"source_row": datasets.Value("int64")})
    targets = tokenized.map(
        _weigh_batch, batched=True, batch_size=batch_size, num_proc=num_proc, features=features,
        remove_columns=[_IDS], fn_kwargs={"weighting": weighting, "idf": idf, "top_k": top_k},
        desc="Data-driven targets: weighting",
    ).with_format(None)
    targets = targets.select_columns(list(features))
    info = TargetInfo(
        method="data",
        params={"weighting": weighting, "top_k": top_k, "stopwords": stopwords_name, "max_length": max_length,
                "text_column": text_column},
        backbone=backbone or getattr(tokenizer, "name_or_path", ""),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        vocab_size=vocab_size,
        corpus=corpus,
        corpus_fingerprint=getattr(dataset, "_fingerprint", ""),
        num_rows=len(targets),
        dropped={"empty_target": int(dropped)} if dropped else {},
        stats=target_stats(targets, tokenizer),
        text2token_version=__version__,
    )
    return attach_info(targets, info)


def target_stats(targets: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, top: int = 20,
                 batch_size: int = 100_000) -> dict:
    """Mean target size and the tokens that carry the most target mass over the corpus (read in
    batches, so memory does not grow with the corpus)."""
    mass = np.zeros(len(tokenizer), dtype=np.float64)
    rows = total_size = max_size = 0
    for batch in targets.with_format("arrow").iter(batch_size=batch_size):
        ids = batch.column(TARGET_IDS).combine_chunks()
        sizes = np.diff(np.asarray(ids.offsets))
        flat_ids = np.asarray(ids.flatten(), dtype=np.int64)
        flat_w = np.asarray(batch.column(TARGET_WEIGHTS).combine_chunks().flatten(), dtype=np.float64)
        mass += np.bincount(flat_ids, weights=flat_w, minlength=len(mass))
        rows, total_size = rows + len(sizes), total_size + int(sizes.sum())
        max_size = max(max_size, int(sizes.max()) if len(sizes) else 0)
    best = np.argsort(-mass)[:top]
    total = max(len(targets), 1)
    return {
        "mean_target_size": total_size / rows if rows else 0.0,
        "max_target_size": max_size,
        "top_tokens": [[tokenizer.decode([int(i)]), round(float(mass[i]) / total, 6)] for i in best if mass[i] > 0],
        "log_vocab_size": math.log(len(tokenizer)),
    }
