"""The on-disk form of target distributions: Arrow columns plus metadata naming how they were built.

Columns: `text` (string), `target_ids` (list<int32>), `target_weights` (list<float32>, summing to 1).
The metadata (`TargetInfo`) travels in the dataset's `info.description` as JSON, so it survives
`save_to_disk` / `load_from_disk`, and beside the data as `text2token_targets.json`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import weakref
from pathlib import Path
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from ..files import read_or_name_the_file
from ..staging import drop_marker, make_staging, remove_stale_staging

TEXT = "text"
TARGET_IDS = "target_ids"
TARGET_WEIGHTS = "target_weights"
INFO_FILE = "text2token_targets.json"
_INFO_MARKER = "text2token-targets "


def target_features(extra: dict[str, Any] | None = None) -> datasets.Features:
    features = {
        TEXT: datasets.Value("string"),
        TARGET_IDS: datasets.List(datasets.Value("int32")),
        TARGET_WEIGHTS: datasets.List(datasets.Value("float32")),
    }
    features.update(extra or {})
    return datasets.Features(features)


_FINGERPRINTS: "weakref.WeakKeyDictionary[PreTrainedTokenizerBase, tuple[int, str]]" = weakref.WeakKeyDictionary()


def check_text_column(dataset: datasets.Dataset, text_column: str) -> None:
    """The dataset has rows and the named text column, or the error says which columns it has."""
    if text_column not in dataset.column_names:
        raise ValueError(f"no text column {text_column!r} in the dataset; its columns are {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: there is nothing to build targets from")


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of the vocabulary (token -> id), the only part of a tokenizer that targets depend on.
    Cached per tokenizer object (keyed with its size, so added tokens invalidate it)."""
    cached = _FINGERPRINTS.get(tokenizer)
    if cached is not None and cached[0] == len(tokenizer):
        return cached[1]
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    digest = hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
    _FINGERPRINTS[tokenizer] = (len(tokenizer), digest)
    return digest


@dataclasses.dataclass
class TargetInfo:
    """How a target dataset was built: enough to rebuild it and to refuse a mismatched model."""

    method: str
    params: dict
    backbone: str
    tokenizer_fingerprint: str
    vocab_size: int
    corpus: str
    corpus_fingerprint: str
    num_rows: int = 0
    dropped: dict = dataclasses.field(default_factory=dict)
    stats: dict = dataclasses.field(default_factory=dict)
    text2token_version: str = ""
    # The `TargetSpec` (with its "key") the targets were built from: what reuse compares (targets/spec.py).
    spec: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = INFO_FILE) -> "TargetInfo":
        """Parse and type-check the metadata; a malformed one is refused here, naming `source` and the
        field, not later (a `params` string once trained for hours, then failed in the model card)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and name not in data]
        if missing:
            raise ValueError(f"{source}: missing field(s) {missing}")
        for name, value in data.items():
            wanted = _INFO_TYPES.get(name)
            if wanted is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
                raise ValueError(f"{source}: field {name} must be {_TYPE_NAMES[wanted]}, found {type(value).__name__} "
                                 f"{str(value)[:60]!r}")
        return cls(**{k: v for k, v in data.items() if k in fields})


_INFO_TYPES = {"method": str, "params": dict, "backbone": str, "tokenizer_fingerprint": str, "vocab_size": int,
               "corpus": str, "corpus_fingerprint": str, "num_rows": int, "dropped": dict, "stats": dict,
               "text2token_version": str, "spec": dict}
_TYPE_NAMES = {str: "a string", dict: "an object", int: "an integer"}


def attach_info(dataset: datasets.Dataset, info: TargetInfo) -> datasets.Dataset:
    dataset.info.description = _INFO_MARKER + info.to_json()
    return dataset


def read_info(dataset: datasets.Dataset) -> TargetInfo | None:
    description = dataset.info.description or ""
    if not description.startswith(_INFO_MARKER):
        return None
    return TargetInfo.from_json(description[len(_INFO_MARKER):], source="the dataset's TargetInfo")


def check_tokenizer(info: TargetInfo | None, tokenizer: PreTrainedTokenizerBase, *,
                    allow_unverified: bool = False, source: str = "targets") -> None:
    """Refuse targets built with another vocabulary: their ids would name other tokens. Targets without
    `TargetInfo` cannot be checked (two tokenizers of one size would train silently): they are
    refused too, unless `allow_unverified`."""
    if info is None:
        if allow_unverified:
            return
        raise ValueError(
            f"{source}: these targets carry no TargetInfo ({INFO_FILE}), so nothing shows they were built with "
            f"this model's tokenizer ({getattr(tokenizer, 'name_or_path', '?')!r}): build them with a text2token "
            f"target builder, attach their TargetInfo, or pass allow_unverified_targets=True "
            f"(--allow_unverified_targets) to train on them unchecked")
    ours = tokenizer_fingerprint(tokenizer)
    if info.tokenizer_fingerprint != ours:
        raise ValueError(
            f"these targets were built with tokenizer fingerprint {info.tokenizer_fingerprint} "
            f"(backbone {info.backbone!r}), but the model's tokenizer has fingerprint {ours} "
            f"({getattr(tokenizer, 'name_or_path', '?')!r}): rebuild the targets with this model's tokenizer"
        )


def save_targets(dataset: datasets.Dataset, path: str | os.PathLike,
                 extra_files: list[str | os.PathLike] = ()) -> Path:
    """`save_to_disk` into a temporary sibling folder, then rename: a crash never leaves a
    half-written dataset under the final name. `extra_files` (e.g. the corpus prior) go beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_targets(path)
    remove_stale_staging(path)  # left by a save that was killed: only folders this library made
    staging = make_staging(path)
    aside = _aside(path)
    try:
        dataset.save_to_disk(str(staging))
        info = read_info(dataset)
        if info is not None:
            (staging / INFO_FILE).write_text(info.to_json())
        for extra in extra_files:
            shutil.copy2(extra, staging / Path(extra).name)
        drop_marker(staging)
        # Old aside, new in, old deleted: at every instant either the old or the new targets exist
        # (under `path`, or under `aside` where `recover_targets` finds them).
        if path.exists():
            os.replace(path, aside)
        try:
            os.replace(staging, path)
        except BaseException:
            if aside.exists() and not path.exists():
                os.replace(aside, path)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.replaced")


def recover_targets(path: str | os.PathLike) -> None:
    """After a crash between moving old targets aside and moving new ones in: put the old ones back."""
    path = Path(path)
    aside = _aside(path)
    if aside.is_dir():
        if path.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, path)


def load_targets(path: str | os.PathLike) -> datasets.Dataset:
    path = Path(path)
    recover_targets(path)
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved target dataset (no dataset_info.json/state.json)")
    dataset = read_or_name_the_file(lambda: datasets.load_from_disk(str(path)), path)
    missing = [c for c in (TARGET_IDS, TARGET_WEIGHTS) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{path}: missing target column(s) {missing}; found {dataset.column_names}")
    if read_info(dataset) is None and (path / INFO_FILE).is_file():
        attach_info(dataset, TargetInfo.from_json((path / INFO_FILE).read_text(), source=str(path / INFO_FILE)))
    return dataset


WEIGHT_SUM_TOLERANCE = 1e-3


def validate_targets(dataset: datasets.Dataset, vocab_size: int, *, source: str = "targets") -> None:
    """Check every target row before training uses it; the error names the first bad row and field.

    Checked: the columns exist; ids and weights have the same length, at least one entry, ids are
    inside the vocabulary and unique within a row; weights are finite, non-negative and sum to 1.
    Runs on the Arrow buffers (numpy), not row by row in Python.
    """
    import numpy as np
    import pyarrow as pa

    missing = [c for c in (TEXT, TARGET_IDS, TARGET_WEIGHTS) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError(f"{source}: no rows")
    table = dataset.with_format("arrow")[:]
    # Types first: string ids would be parsed and float ids truncated by the casts below, silently.
    for name, wanted, check in ((TARGET_IDS, "integer token ids", pa.types.is_integer),
                                (TARGET_WEIGHTS, "numbers", lambda t: pa.types.is_floating(t) or pa.types.is_integer(t))):
        column_type = table.schema.field(name).type
        if not (pa.types.is_list(column_type) or pa.types.is_large_list(column_type)) \
                or not check(column_type.value_type):
            feature = target_features()[name]
            raise ValueError(f"{source}: column {name} must be a list of {wanted}, found {column_type}: convert it "
                             f"(dataset.cast_column({name!r}, {feature!r}))")
    ids_col = table.column(TARGET_IDS).combine_chunks()
    weights_col = table.column(TARGET_WEIGHTS).combine_chunks()
    if ids_col.null_count or weights_col.null_count:
        row = int(np.flatnonzero(np.asarray(ids_col.is_null()) | np.asarray(weights_col.is_null()))[0])
        raise ValueError(f"{source}: row {row}: {TARGET_IDS} or {TARGET_WEIGHTS} is null")
    for name, column in ((TARGET_IDS, ids_col), (TARGET_WEIGHTS, weights_col)):
        values = column.flatten()
        if values.null_count:
            lengths = np.diff(np.asarray(column.offsets))
            first = int(np.flatnonzero(np.asarray(values.is_null()))[0])
            row = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
            raise ValueError(f"{source}: row {row}: {name} holds a null element ({values.null_count} in all)")
    id_lengths = np.diff(np.asarray(ids_col.offsets))
    weight_lengths = np.diff(np.asarray(weights_col.offsets))

    def fail(mask: np.ndarray, message: str):
        bad = np.flatnonzero(mask)
        if len(bad):
            raise ValueError(f"{source}: row {int(bad[0])}: {message} ({len(bad)} bad row(s) in all)")

    fail(id_lengths != weight_lengths, f"{TARGET_IDS} and {TARGET_WEIGHTS} have different lengths")
    fail(id_lengths == 0, "empty target")
    rows = np.repeat(np.arange(len(id_lengths)), id_lengths)
    ids = np.asarray(pa.compute.cast(ids_col.flatten(), pa.int64()))
    weights = np.asarray(pa.compute.cast(weights_col.flatten(), pa.float64()))
    per_row = lambda values: np.bincount(rows, weights=values.astype(np.float64), minlength=len(id_lengths))
    fail(per_row((ids < 0) | (ids >= vocab_size)) > 0,
         f"{TARGET_IDS} holds an id outside the vocabulary [0, {vocab_size})")
    fail(per_row(~np.isfinite(weights)) > 0, f"{TARGET_WEIGHTS} holds NaN or infinity")
    fail(per_row(weights < 0) > 0, f"{TARGET_WEIGHTS} holds a negative weight")
    sums = per_row(np.where(np.isfinite(weights), weights, 0.0))
    fail(np.abs(sums - 1.0) > WEIGHT_SUM_TOLERANCE, f"{TARGET_WEIGHTS} do not sum to 1")
    order = np.lexsort((ids, rows))
    duplicate = (np.diff(rows[order]) == 0) & (np.diff(ids[order]) == 0)
    fail(per_row(np.r_[duplicate, False][np.argsort(order)]) > 0, f"{TARGET_IDS} holds a duplicate id")
