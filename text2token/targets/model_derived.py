"""Model-derived targets (stage 2): the tokens a frozen stage-1 model associates with each text.

For each text, `p0 = softmax(W h0)` from the frozen (merged) stage-1 model; the corpus prior is
`pi = softmax(mean over the corpus of W h0)`; `r = p0 / (p0 + pi + 1e-8)` debiases tokens that every
text predicts; `q = softmax(r / tau)` with a tiny temperature (paper: 1e-4 for mean pooling, 1e-5
for last pooling) is a sharp soft top-k, stored as its top-k entries renormalised, with the mass
those k entries held in `target_mass`.

Only one transformer pass runs: it saves each text's pooled `h0` in shards (a crash loses at most one
shard). Because `W` is linear, the mean of `W h0` is `W` applied to the mean of `h0`, so the prior
comes from the saved vectors, and the second pass is only a head projection per text.

Under a multi-process launch every rank takes a contiguous block of whole shards (so each text is
encoded in the same batch as in a one-process build), encodes it, and writes its own shard files;
the prior is reduced across ranks (the float64 sum of `h0` and the row count, which give the same
prior as the one-process mean); each rank then writes the targets of its rows, and the main process
assembles the dataset from those files in rank order. Only the main process returns the dataset.
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
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from tqdm.auto import tqdm

from .._version import __version__
from ..devices import place_model
from ..distributed import all_reduce_sum, any_rank, barrier, is_main_process, rank, split_evenly, world_size
from ..files import write_atomic
from ..value_checks import check_range, check_temperature
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
from .defaults import TARGET_DEFAULTS

logger = logging.getLogger(__name__)

PRIOR_FILE = "corpus_prior.safetensors"
TARGET_MASS = "target_mass"
_EPS = 1e-8


def _shard_path(work_dir: Path, index: int) -> Path:
    return work_dir / f"h0-{index:06d}.safetensors"


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    write_atomic(path, save_safetensors({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))


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


def _prepare_work_dir(model, texts: list[str], work_dir: Path, shard_size: int, batch_size: int,
                      num_shards: int) -> None:
    """Check (and record) the corpus layout and that saved shards are this model's."""
    work_dir.mkdir(parents=True, exist_ok=True)
    manifest = work_dir / "shards.json"
    texts_digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    layout = {"num_texts": len(texts), "shard_size": shard_size, "texts_sha256": texts_digest}
    if manifest.is_file() and json.loads(manifest.read_text()) != layout:
        raise ValueError(f"{work_dir} holds shards of another corpus layout {manifest.read_text()}; "
                         f"use another work_dir or delete it")
    write_atomic(manifest, json.dumps(layout))
    done = sum(_shard_path(work_dir, i).is_file() for i in range(num_shards))
    if done:
        _check_same_model(model, texts, work_dir, batch_size)
        logger.info("Resuming: %d of %d shards of h0 already in %s", done, num_shards, work_dir)


def shards_of_rank(num_texts: int, shard_size: int, rank_index: int, ranks: int) -> range:
    """The shard indices one rank encodes: a contiguous block, block sizes differing by at most one."""
    return split_evenly(-(-num_texts // shard_size), ranks, rank_index)


@torch.inference_mode()
def encode_corpus_in_shards(model, texts: list[str], work_dir: Path, *, shard_size: int = TARGET_DEFAULTS.shard_size,
                            batch_size: int = 32, shards: range | None = None) -> torch.Tensor:
    """Pooled `h0` of the texts of `shards` (default: all), computed shard by shard; shards already on
    disk are reused. Under a multi-process launch every rank calls this with its own `shards`."""
    starts = range(0, len(texts), shard_size)
    problem = None
    if is_main_process():  # one rank checks and records the layout; the others wait for its verdict
        try:
            _prepare_work_dir(model, texts, work_dir, shard_size, batch_size, len(starts))
        except ValueError as exc:
            problem = exc
    if any_rank(problem is not None):
        raise problem or ValueError(f"the main process refused the shards in {work_dir}: see its error")
    shards = range(len(starts)) if shards is None else shards
    pieces = []
    for index in tqdm(shards, desc="Model-derived targets: encoding shards", disable=not is_main_process()):
        start = starts[index]
        path = _shard_path(work_dir, index)
        if not path.is_file():
            # At the training length: these targets are for the inputs stage 2 trains on.
            h0 = model.encode(texts[start:start + shard_size], batch_size=batch_size, convert_to_tensor=True,
                              show_progress_bar=False, max_length=model.config.max_length)
            _atomic_save({"h0": h0.float()}, path)
        pieces.append(load_file(str(path))["h0"])
    return torch.cat(pieces) if pieces else torch.empty(0, model.config.lm_config.hidden_size)


@torch.inference_mode()
def corpus_prior(model, h0: torch.Tensor) -> torch.Tensor:
    """pi = softmax(W mean h0) over the whole corpus: each rank's float64 sum of `h0` and row count
    are summed across ranks (one rank: its own), so the prior does not depend on the split."""
    totals = torch.cat([h0.double().sum(dim=0), torch.tensor([float(len(h0))], dtype=torch.float64)])
    totals = all_reduce_sum(totals)
    mean = (totals[:-1] / totals[-1]).float().unsqueeze(0)
    return model.project(mean.to(model.device)).softmax(-1)


@torch.inference_mode()
def targets_from_embeddings(model, h0: torch.Tensor, *, temperature: float, top_k: int, batch_size: int = 256,
                            prior: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]:
    """Top-k ids, renormalised weights and kept mass of `q` for each row of `h0`, plus the prior `pi`
    (computed from `h0` unless given: a rank passes the prior of the whole corpus)."""
    device = model.device
    prior = corpus_prior(model, h0) if prior is None else prior.reshape(1, -1).to(device)
    ids = [np.zeros((0, top_k), np.int32)]
    weights, mass = [np.zeros((0, top_k), np.float32)], [np.zeros(0, np.float32)]
    for start in range(0, len(h0), batch_size):
        p0 = model.project(h0[start:start + batch_size].to(device)).softmax(-1)
        ratio = p0 / (p0 + prior + _EPS)
        q = (ratio / temperature).softmax(-1)
        if not bool(torch.isfinite(q).all()):  # a temperature the float32 division overflows at
            raise ValueError(f"temperature={temperature!r}: the targets overflow to NaN at this temperature; "
                             f"use a larger one (the paper's: 1e-4 mean pooling, 1e-5 last pooling)")
        top_q, top_ids = q.topk(top_k, dim=-1)
        kept = top_q.sum(-1, keepdim=True)
        ids.append(top_ids.cpu().numpy().astype(np.int32))
        weights.append((top_q / kept).cpu().numpy().astype(np.float32))
        mass.append(kept.squeeze(-1).cpu().numpy().astype(np.float32))
    return np.concatenate(ids), np.concatenate(weights), np.concatenate(mass), prior.squeeze(0).cpu()


def _rank_targets_path(work_dir: Path, rank_index: int, ranks: int) -> Path:
    return work_dir / f"targets-rank{rank_index:05d}-of-{ranks:05d}.safetensors"


def _gather_rank_targets(work_dir: Path, ids, weights, mass):
    """Each rank writes the targets of its rows; after a barrier (the ranks' shares are equal, so no
    rank waits long) the main process reads them back in rank order. Others get (None, None, None)."""
    _atomic_save({"ids": torch.from_numpy(ids), "weights": torch.from_numpy(weights), "mass": torch.from_numpy(mass)},
                 _rank_targets_path(work_dir, rank(), world_size()))
    barrier()
    if not is_main_process():
        return None, None, None
    parts = [load_file(str(_rank_targets_path(work_dir, r, world_size()))) for r in range(world_size())]
    return tuple(np.concatenate([part[key].numpy() for part in parts]) for key in ("ids", "weights", "mass"))


def build_model_derived_targets(
    model,
    dataset: datasets.Dataset,
    *,
    work_dir: str | os.PathLike,
    text_column: str = TEXT,
    temperature: float | None = None,
    top_k: int | None = None,
    shard_size: int | None = None,
    batch_size: int = 32,
    backbone: str = "",
    corpus: str = "",
    allow_cpu: bool = False,
) -> datasets.Dataset:
    """Targets from a frozen stage-1 `Text2TokenModel` (its LoRA merged) over `dataset`.

    `work_dir` keeps the resumable shards of `h0` and the corpus prior (`corpus_prior.safetensors`,
    which `save_targets(..., extra_files=...)` can store beside the dataset). Under a multi-process
    launch every rank calls this with the same arguments (`work_dir` on a file system all ranks
    share); the main process returns the dataset, the others None.

    The pass runs on this process's accelerator in the model's dtype (`devices.place_model`); on the
    CPU while an accelerator is visible only with `allow_cpu`.
    """
    if model.config.lora is not None:
        raise ValueError("model-derived targets come from a frozen stage-1 model: merge its LoRA first "
                         "(model.merge_lora(), or load the merged model the stage-1 run saved)")
    check_text_column(dataset, text_column)
    temperature = TARGET_DEFAULTS.temperature(model.config.pooling) if temperature is None else temperature
    top_k = TARGET_DEFAULTS.model_top_k if top_k is None else top_k
    shard_size = TARGET_DEFAULTS.shard_size if shard_size is None else shard_size
    check_temperature("temperature", temperature)
    check_range("shard_size", shard_size, low=1, integer=True)
    vocab_size = model.config.lm_config.vocab_size
    if not 1 <= top_k <= vocab_size:
        raise ValueError(f"top_k={top_k}: must be between 1 and the vocabulary size {vocab_size}")

    place_model(model, purpose="the model-derived target pass", allow_cpu=allow_cpu)
    texts = dataset.with_format("arrow")[text_column].to_pylist()  # one conversion, not a lookup per row
    rows, dropped = _valid_rows(texts, text_column)
    if len(rows) == 0:
        raise ValueError("no non-empty text in the dataset: there is nothing to build targets from")
    if dropped:
        logger.warning("%d empty or whitespace-only texts are skipped", dropped)
    kept_texts = [texts[i] for i in rows]
    work_dir = Path(work_dir)
    shards = shards_of_rank(len(kept_texts), shard_size, rank(), world_size())
    h0 = encode_corpus_in_shards(model, kept_texts, work_dir, shard_size=shard_size, batch_size=batch_size,
                                 shards=shards)
    prior = corpus_prior(model, h0)  # a collective under a multi-process launch
    ids, weights, mass, prior = targets_from_embeddings(model, h0, temperature=temperature, top_k=top_k,
                                                        prior=prior)
    if world_size() > 1:
        ids, weights, mass = _gather_rank_targets(work_dir, ids, weights, mass)
        if ids is None:
            return None  # not the main process: its rows are in its file, the main process assembles
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
