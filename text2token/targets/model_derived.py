"""Model-derived targets (stage 2): the tokens a frozen stage-1 model associates with each text.

For each text, `p0 = softmax(W h0)` from the frozen (merged) stage-1 model; the corpus prior is
`pi = softmax(mean over the corpus of W h0)`; `r = p0 / (p0 + pi + 1e-8)` debiases tokens that every
text predicts; `q = softmax(r / tau)` with a tiny temperature (paper: 1e-4 for mean pooling, 1e-5
for last pooling) is a sharp soft top-k, stored as its top-k entries renormalised, with the mass
those k entries held in `target_mass`.

Only one transformer pass runs: it saves each text's pooled `h0` in shards (a crash loses at most one
shard). Because `W` is linear, the mean of `W h0` is `W` applied to the mean of `h0`, so the prior
comes from the saved vectors, and the second pass is only a head projection per text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

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
from .spec import MODEL_DERIVED_TOP_K, PAPER_TEMPERATURE

logger = logging.getLogger(__name__)

PRIOR_FILE = "corpus_prior.safetensors"
TARGET_MASS = "target_mass"
_EPS = 1e-8


def _shard_path(work_dir: Path, index: int) -> Path:
    return work_dir / f"h0-{index:06d}.safetensors"


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    partial = path.with_name(path.name + ".partial")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial), metadata=metadata)
    os.replace(partial, path)


def _valid_rows(texts: list, text_column: str) -> tuple[np.ndarray, int]:
    keep = []
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"row {row}: field {text_column!r} is {type(text).__name__}, expected a string")
        if text.strip():
            keep.append(row)
    return np.asarray(keep, dtype=np.int64), len(texts) - len(keep)


def _check_same_model(model, texts: list[str], work_dir: Path, batch_size: int) -> None:
    """Shards left by another model (a retrained stage 1, say) must not be mixed in: re-encode a
    few texts of a saved shard and compare."""
    index = next(i for i in itertools.count() if _shard_path(work_dir, i).is_file())
    saved = load_file(str(_shard_path(work_dir, index)))["h0"]
    start = index * json.loads((work_dir / "shards.json").read_text())["shard_size"]
    probe = texts[start:start + min(4, len(saved))]
    fresh = model.encode(probe, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False,
                         max_length=model.config.max_length)
    if not torch.allclose(fresh.float(), saved[:len(probe)], rtol=1e-3, atol=1e-4):
        raise ValueError(f"the shards in {work_dir} were computed by another model: delete them or use another "
                         f"work_dir")


@torch.inference_mode()
def encode_corpus_in_shards(model, texts: list[str], work_dir: Path, *, shard_size: int = 1024,
                            batch_size: int = 32) -> torch.Tensor:
    """Pooled `h0` of every text, computed shard by shard; shards already on disk are reused."""
    work_dir.mkdir(parents=True, exist_ok=True)
    manifest = work_dir / "shards.json"
    texts_digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    layout = {"num_texts": len(texts), "shard_size": shard_size, "texts_sha256": texts_digest}
    if manifest.is_file() and json.loads(manifest.read_text()) != layout:
        raise ValueError(f"{work_dir} holds shards of another corpus layout {manifest.read_text()}; "
                         f"use another work_dir or delete it")
    manifest.write_text(json.dumps(layout))
    starts = range(0, len(texts), shard_size)
    done = sum(_shard_path(work_dir, i).is_file() for i in range(len(starts)))
    if done:
        _check_same_model(model, texts, work_dir, batch_size)
        logger.info("Resuming: %d of %d shards of h0 already in %s", done, len(starts), work_dir)
    pieces = []
    for index, start in enumerate(tqdm(starts, desc="Model-derived targets: encoding shards")):
        path = _shard_path(work_dir, index)
        if not path.is_file():
            # At the training length: these targets are for the inputs stage 2 trains on.
            h0 = model.encode(texts[start:start + shard_size], batch_size=batch_size, convert_to_tensor=True,
                              show_progress_bar=False, max_length=model.config.max_length)
            _atomic_save({"h0": h0.float()}, path)
        pieces.append(load_file(str(path))["h0"])
    return torch.cat(pieces) if pieces else torch.empty(0)


@torch.inference_mode()
def targets_from_embeddings(model, h0: torch.Tensor, *, temperature: float, top_k: int,
                            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]:
    """Top-k ids, renormalised weights and kept mass of `q` for each row of `h0`, plus the prior `pi`."""
    device = model.device
    prior = model.project(h0.mean(dim=0, keepdim=True).to(device)).softmax(-1)  # pi = softmax(W mean h0)
    ids, weights, mass = [], [], []
    for start in range(0, len(h0), batch_size):
        p0 = model.project(h0[start:start + batch_size].to(device)).softmax(-1)
        ratio = p0 / (p0 + prior + _EPS)
        q = (ratio / temperature).softmax(-1)
        top_q, top_ids = q.topk(top_k, dim=-1)
        kept = top_q.sum(-1, keepdim=True)
        ids.append(top_ids.cpu().numpy().astype(np.int32))
        weights.append((top_q / kept).cpu().numpy().astype(np.float32))
        mass.append(kept.squeeze(-1).cpu().numpy().astype(np.float32))
    return np.concatenate(ids), np.concatenate(weights), np.concatenate(mass), prior.squeeze(0).cpu()


def build_model_derived_targets(
    model,
    dataset: datasets.Dataset,
    *,
    work_dir: str | os.PathLike,
    text_column: str = TEXT,
    temperature: float | None = None,
    top_k: int = MODEL_DERIVED_TOP_K,
    shard_size: int = 1024,
    batch_size: int = 32,
    backbone: str = "",
    corpus: str = "",
) -> datasets.Dataset:
    """Targets from a frozen stage-1 `Text2TokenModel` (its LoRA merged) over `dataset`.

    `work_dir` keeps the resumable shards of `h0` and the corpus prior (`corpus_prior.safetensors`,
    which `save_targets(..., extra_files=...)` can store beside the dataset).
    """
    if model.config.lora is not None:
        raise ValueError("model-derived targets come from a frozen stage-1 model: merge its LoRA first "
                         "(model.merge_lora(), or load the merged model the stage-1 run saved)")
    check_text_column(dataset, text_column)
    temperature = PAPER_TEMPERATURE[model.config.pooling] if temperature is None else temperature
    if not temperature > 0:
        raise ValueError(f"temperature={temperature}: must be positive")
    vocab_size = model.config.lm_config.vocab_size
    if not 1 <= top_k <= vocab_size:
        raise ValueError(f"top_k={top_k}: must be between 1 and the vocabulary size {vocab_size}")

    texts = dataset.with_format("arrow")[text_column].to_pylist()  # one conversion, not a lookup per row
    rows, dropped = _valid_rows(texts, text_column)
    if len(rows) == 0:
        raise ValueError("no non-empty text in the dataset: there is nothing to build targets from")
    if dropped:
        logger.warning("%d empty or whitespace-only texts are skipped", dropped)
    kept_texts = [texts[i] for i in rows]
    work_dir = Path(work_dir)
    h0 = encode_corpus_in_shards(model, kept_texts, work_dir, shard_size=shard_size, batch_size=batch_size)
    ids, weights, mass, prior = targets_from_embeddings(model, h0, temperature=temperature, top_k=top_k)
    _atomic_save({"prior": prior}, work_dir / PRIOR_FILE, metadata={"meaning": "softmax(W mean_corpus h0)"})

    features = target_features({TARGET_MASS: datasets.Value("float32"), "source_row": datasets.Value("int64")})
    offsets = pa.array(np.arange(0, ids.size + 1, top_k, dtype=np.int32))  # every row holds exactly top_k
    table = pa.table({TEXT: pa.array(kept_texts, pa.string()),
                      TARGET_IDS: pa.ListArray.from_arrays(offsets, pa.array(ids.ravel())),
                      TARGET_WEIGHTS: pa.ListArray.from_arrays(offsets, pa.array(weights.ravel())),
                      TARGET_MASS: pa.array(mass), "source_row": pa.array(rows)})
    targets = datasets.Dataset(table.cast(features.arrow_schema), info=datasets.DatasetInfo(features=features))
    tokenizer = model.tokenizer
    top_prior = prior.topk(20)
    info = TargetInfo(
        method="model",
        params={"temperature": temperature, "top_k": top_k, "pooling": model.config.pooling,
                "attention": model.config.attention, "prompt": model.config.prompt,
                "max_length": model.config.max_length, "text_column": text_column},
        backbone=backbone or model.config._name_or_path,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        vocab_size=vocab_size,
        corpus=corpus,
        corpus_fingerprint=getattr(dataset, "_fingerprint", ""),
        num_rows=len(targets),
        dropped={"empty_text": int(dropped)} if dropped else {},
        stats={"mean_target_mass": float(mass.mean()), "min_target_mass": float(mass.min()),
               "mean_target_size": float(top_k),
               "top_prior_tokens": [[tokenizer.decode([int(i)]), round(float(p), 6)]
                                    for p, i in zip(top_prior.values, top_prior.indices)]},
        text2token_version=__version__,
    )
    logger.info("Model-derived targets: %d rows, top-%d keeps %.3f of q's mass on average",
                len(targets), top_k, float(mass.mean()))
    return attach_info(targets, info)
