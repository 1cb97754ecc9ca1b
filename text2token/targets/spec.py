"""`TargetSpec`: everything a target build depends on, in one place, with a key that decides reuse.

A stored target dataset is reused only when the spec it was built from (recorded in its
`TargetInfo.spec`) has the same key as the spec a run asks for; otherwise the differing fields are
named. The spec holds the method, every parameter with its default resolved here and nowhere else,
the corpus identity (a portable name and a digest of the texts of the slice used), the tokenizer's
fingerprint and, for model-derived targets, the digest of the deriving model's weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa

from ..digests import file_digest, weights_digest
from ..records import record_differences
from .data_driven import WEIGHTINGS, resolve_stopwords
from .defaults import TARGET_DEFAULTS
from .schema import TEXT, TargetInfo, attach_info, read_info, tokenizer_fingerprint

METHODS = ("data", "model")
# Fields that label a spec without changing what it builds: left out of the key.
_LABELS = ("corpus",)


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    method: str
    params: dict
    corpus: str  # portable: a packaged name, a Hub id, or a file/folder name with its digest
    corpus_fingerprint: str  # sha256 of the texts of the slice used
    split: str
    max_rows: int | None
    tokenizer_fingerprint: str
    model_digest: str = ""  # model-derived targets: the deriving model's weights
    # The stopwords as given (a list name, a file, words) for the build; only their resolved name in
    # `params` identifies the targets, so this is left out of the record and the key.
    stopwords: str | os.PathLike | Iterable[str] | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        record = dataclasses.asdict(self)
        del record["stopwords"]
        return record

    def key(self) -> str:
        """A stable hash of every field that changes the targets."""
        content = {k: v for k, v in self.to_dict().items() if k not in _LABELS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def differences(self, stored: dict | None) -> list[str]:
        """`field: stored -> wanted` for each field (params one by one) where `stored` (a spec
        dict, as `TargetInfo.spec` holds it) differs from this spec; empty when the keys agree."""
        if not stored:
            return ["spec: none recorded (targets built before TargetSpec, or elsewhere)"]
        if stored.get("key") == self.key():
            return []
        wanted = {k: v for k, v in self.to_dict().items() if k not in _LABELS}
        named = record_differences({k: v for k, v in stored.items() if k not in ("key", *_LABELS)}, wanted)
        return named or [f"key: {stored.get('key')!r} -> {self.key()!r}"]

    @classmethod
    def resolve(cls, method: str, corpus: datasets.Dataset, encoder, *, source: str, text_column: str = TEXT,
                split: str = "train", max_rows: int | None = None, data_files=None, max_length: int | None = None,
                weighting: str | None = None, top_k: int | None = None, temperature: float | None = None,
                stopwords: str | os.PathLike | Iterable[str] | None = None) -> "TargetSpec":
        """The spec of a build of `method` over `corpus` (the slice loaded from `source`) by `encoder`:
        a tokenizer or a Text2Token model for data-driven targets, the frozen model for model-derived
        ones (its pooling, prompt, attention and length are part of the spec). Options left None take
        their defaults (`TARGET_DEFAULTS`); `max_length` defaults to the model's training length."""
        config = getattr(encoder, "config", None)
        if method == "model" and config is None:
            raise ValueError("model-derived targets need a Text2Token model as the encoder, not a tokenizer")
        if max_length is None or method == "model":
            if config is None:
                raise ValueError("data-driven targets from a tokenizer need max_length (the training length)")
            max_length = config.max_length
        params = resolve_params(method, pooling=getattr(config, "pooling", "mean"), max_length=max_length,
                                prompt=getattr(config, "prompt", None), attention=getattr(config, "attention", "causal"),
                                text_column=text_column, weighting=weighting, top_k=top_k, temperature=temperature,
                                stopwords=stopwords)
        spec = build_spec(method, params, source=source, corpus=corpus, text_column=text_column, split=split,
                          max_rows=max_rows, tokenizer=getattr(encoder, "tokenizer", encoder),
                          model=encoder if method == "model" else None, data_files=data_files)
        return dataclasses.replace(spec, stopwords=stopwords) if method == "data" and stopwords is not None else spec


def resolve_params(method: str, *, pooling: str, max_length: int, prompt: str | None = None,
                   attention: str = "causal", text_column: str = TEXT, weighting: str | None = None,
                   top_k: int | None = None, temperature: float | None = None,
                   stopwords: str | os.PathLike | Iterable[str] | None = None) -> dict:
    """Every parameter of a build with its default (`TARGET_DEFAULTS`) filled in. The result equals
    the `params` the builder records in `TargetInfo`."""
    if method == "data":
        weighting = TARGET_DEFAULTS.weighting if weighting is None else weighting
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={weighting!r}: expected one of {WEIGHTINGS}")
        stopwords = TARGET_DEFAULTS.stopwords if stopwords is None else stopwords
        return {"weighting": weighting, "top_k": top_k, "stopwords": resolve_stopwords(stopwords)[1],
                "max_length": max_length, "text_column": text_column}
    if method == "model":
        return {"temperature": TARGET_DEFAULTS.temperature(pooling) if temperature is None else temperature,
                "top_k": TARGET_DEFAULTS.model_top_k if top_k is None else top_k, "pooling": pooling,
                "attention": attention, "prompt": prompt, "max_length": max_length, "text_column": text_column}
    raise ValueError(f"target method {method!r}: expected one of {METHODS}")


def text_fingerprint(dataset: datasets.Dataset, text_column: str) -> str:
    """sha256 of a text column's content (lengths, null marks, UTF-8 bytes), read from the Arrow
    buffers batch by batch: the same texts give the same digest however they were loaded or chunked."""
    # Three streams, each the concatenation over chunks, so chunk boundaries leave no trace.
    lengths, nulls, values = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    column = dataset.select_columns([text_column]).with_format("arrow")
    for batch in column.iter(batch_size=65536):
        for chunk in batch.column(text_column).chunks:
            chunk = chunk.cast(pa.large_string())  # one offset width, whatever the source's
            _, offset_buffer, data = chunk.buffers()
            offsets = np.frombuffer(offset_buffer, dtype=np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
            valid = np.asarray(chunk.is_valid(), dtype=np.uint8)
            lengths.update((np.diff(offsets) * valid).tobytes())
            nulls.update(valid.tobytes())
            if data is not None and offsets[-1] > offsets[0]:
                values.update(memoryview(data)[offsets[0]:offsets[-1]])
    streams = lengths.hexdigest() + nulls.hexdigest() + values.hexdigest()
    return hashlib.sha256(streams.encode()).hexdigest()[:16]


def portable_corpus_name(source: str, fingerprint: str = "", data_files=None) -> str:
    """A name for a corpus that means the same on every machine: a packaged name or Hub id as it is
    (with the files picked, if any); a local file as its name and content digest; a local folder as
    its name and the texts' fingerprint. Never an absolute path."""
    path = Path(source)
    if path.is_file():
        return f"{path.name}@sha256:{file_digest(path)[:12]}"
    if path.is_dir():
        return f"{path.resolve().name}@texts:{fingerprint[:12]}"
    if data_files:
        files = [data_files] if isinstance(data_files, str) else list(data_files)
        return f"{source}:{','.join(files)}"
    return source


def build_spec(method: str, params: dict, *, source: str, corpus: datasets.Dataset, text_column: str,
               split: str, max_rows: int | None, tokenizer, model=None, data_files=None) -> TargetSpec:
    """The spec of a build of `method` with resolved `params` over `corpus` (the slice loaded from
    `source`), by `tokenizer` and, for model-derived targets, `model`'s weights."""
    fingerprint = text_fingerprint(corpus, text_column)
    return TargetSpec(method=method, params=params, corpus=portable_corpus_name(source, fingerprint, data_files),
                      corpus_fingerprint=fingerprint, split=split, max_rows=max_rows,
                      tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
                      model_digest=model_digest(model) if method == "model" else "")


def model_digest(model) -> str:
    """Digest of the deriving model's weights: its source folder's safetensors when it was loaded
    from one, else the tensors in memory."""
    source = Path(getattr(model.config, "_name_or_path", "") or "")
    if str(source) and source.is_dir() and any(source.glob("*.safetensors")):
        return weights_digest(source)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def stamp(targets: datasets.Dataset, spec: TargetSpec) -> datasets.Dataset:
    """Record `spec` (with its key) and the portable corpus name in the targets' `TargetInfo`."""
    info = read_info(targets)
    if info is None:
        raise ValueError("these targets carry no TargetInfo to record their spec in")
    if info.params != spec.params:  # the builder and the spec must agree on what was built
        raise AssertionError(f"builder params {info.params} differ from the spec's {spec.params}")
    info.spec = {**spec.to_dict(), "key": spec.key()}
    info.corpus = spec.corpus
    return attach_info(targets, info)


def stored_spec(info: TargetInfo | None) -> dict | None:
    return (info.spec or None) if info is not None else None
