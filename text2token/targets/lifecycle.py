"""`obtain`: the targets of a spec, reused from their folder or built, stamped and saved, on every
process of a launch; `check_supplied`: prebuilt targets held against what a run asks for."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import datasets

from ..distributed import is_main_process, wait_for_path, world_size
from ..files import write_atomic
from ..records import record_differences
from .data_driven import build_data_driven_targets
from .model_derived import PRIOR_FILE, build_model_derived_targets
from .schema import load_targets, read_info, save_targets, tokenizer_fingerprint
from .spec import TargetSpec, stamp, stored_spec

logger = logging.getLogger(__name__)


def ready_file(cache: Path) -> Path:
    """Written by the main process once the targets in `cache` are saved, holding their spec's key."""
    return cache.with_name(cache.name + ".ready")


def obtain(spec: TargetSpec, corpus: datasets.Dataset, encoder, cache: str | os.PathLike, *,
           work_dir: str | os.PathLike | None = None, shard_size: int | None = None, num_proc: int | None = None,
           backbone: str = "", allow_cpu: bool = False) -> datasets.Dataset:
    """The targets of `spec` in folder `cache`: reused when the spec they were built from has this
    spec's key; otherwise built from `corpus` (the slice `spec` was resolved over) by `encoder` (a
    tokenizer or model for data-driven targets, the frozen model, LoRA merged, for model-derived
    ones), stamped with the spec and saved there, the differing fields logged.

    Under a multi-process launch every rank calls this with the same arguments: a data-driven build
    runs on the main process (`num_proc` tokenizer workers); each rank encodes its share of a
    model-derived corpus. The main process then writes `<cache>.ready` with the spec's key; the other
    ranks wait for that file, not in a collective, so a long build never trips the process-group timeout.

    `work_dir` keeps the model pass's resumable shards (a resumed build reuses them); by default
    `<cache>-work/<spec key>`, where the shards of other keys are dropped. `backbone` is the portable
    name recorded in `TargetInfo`. `allow_cpu` lets the model pass run on the CPU beside a visible
    accelerator (refused otherwise: see `text2token.devices`).
    """
    cache = Path(cache)
    ready = ready_file(cache)
    if world_size() > 1 and not is_main_process() and spec.method == "data":
        return _wait_for_targets(cache, ready, spec.key())
    # An empty folder is a fresh one (made for the targets); anything else must be a target dataset,
    # checked by every rank before any writes (they read the same files, so all take the same branch).
    existing = _load_existing(cache) if _holds_anything(cache) else None
    if existing is not None and (world_size() == 1 or _ready_key(ready) == spec.key()):
        differing = spec.differences(stored_spec(read_info(existing)))
        if not differing:
            logger.info("Reusing the targets in %s (%d rows, spec %s)", cache, len(existing), spec.key())
            return existing
        logger.warning("The targets in %s were built from another spec: rebuilding. Differing: %s",
                       cache, "; ".join(differing))
    if is_main_process():
        ready.unlink(missing_ok=True)
    params = spec.params
    if spec.method == "data":
        targets = build_data_driven_targets(corpus, getattr(encoder, "tokenizer", encoder),
                                            text_column=params["text_column"], weighting=params["weighting"],
                                            top_k=params["top_k"], stopwords=_stopwords(spec),
                                            max_length=params["max_length"], backbone=backbone, corpus=spec.corpus,
                                            num_proc=num_proc)
        save_targets(stamp(targets, spec), cache)
    else:
        key_dir = Path(work_dir) if work_dir else _work_dir_of(spec, cache.with_name(cache.name + "-work"))
        targets = build_model_derived_targets(encoder, corpus, work_dir=key_dir, text_column=params["text_column"],
                                              temperature=params["temperature"], top_k=params["top_k"],
                                              shard_size=shard_size, backbone=backbone, corpus=spec.corpus,
                                              allow_cpu=allow_cpu)
        if targets is None:  # another rank's share is done; the main process assembles and saves
            return _wait_for_targets(cache, ready, spec.key())
        save_targets(stamp(targets, spec), cache, extra_files=[key_dir / PRIOR_FILE])
    logger.info("Saved %d rows of %s targets to %s (spec %s)", len(targets), spec.method, cache, spec.key())
    write_atomic(ready, spec.key())
    return load_targets(cache)


def _stopwords(spec: TargetSpec):
    """The stopwords to build with: as given to `TargetSpec.resolve`, else the list its params name."""
    return spec.stopwords if spec.stopwords is not None else spec.params["stopwords"]


def _holds_anything(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _load_existing(cache: Path) -> datasets.Dataset:
    try:
        return load_targets(cache)
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"{cache} exists and is not a target dataset ({exc}): move it away or choose "
                         f"another folder for the targets") from None


def _work_dir_of(spec: TargetSpec, work_root: Path) -> Path:
    """`<work_root>/<key>`: a build for another spec (a retrained stage 1, another corpus) starts clean
    instead of tripping over stale shards; the main process drops other keys' shards."""
    work_dir = work_root / spec.key()
    if work_root.is_dir() and is_main_process():
        for stale in work_root.iterdir():
            if stale != work_dir:
                logger.info("Removing shards of another target spec: %s", stale)
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return work_dir


def _ready_key(ready: Path) -> str | None:
    try:
        return ready.read_text().strip()
    except FileNotFoundError:
        return None


def _wait_for_targets(cache: Path, ready: Path, key: str) -> datasets.Dataset:
    """A rank other than the main one: wait on the file system until the main process has saved the
    targets of spec `key` (a crash of the main process ends the whole launch, so this does not hang)."""
    logger.info("Waiting for the main process to save the targets in %s", cache)
    while _ready_key(wait_for_path(ready, what="the target dataset")) != key:
        time.sleep(0.5)
    return load_targets(cache)


def check_supplied(targets: datasets.Dataset, source: str, *, method: str, tokenizer, top_k: int | None = None,
                   temperature: float | None = None) -> TargetSpec | None:
    """Prebuilt targets held against what a run asks for (the method, the model's tokenizer, and
    top_k / temperature when the run sets them): refused naming each differing field, since
    rebuilding them would replace the user's own targets. Returns the spec they record, if any."""
    info = read_info(targets)
    if info is None:
        return None
    asked = {"method": method, "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
             "params": {k: v for k, v in (("top_k", top_k), ("temperature", temperature)) if v is not None}}
    have = {"method": info.method, "tokenizer_fingerprint": info.tokenizer_fingerprint,
            "params": {k: info.params.get(k) for k in asked["params"]}}
    differing = record_differences(have, asked)
    if differing:
        raise ValueError(f"the targets in {source} differ from what this run asks for (targets -> this run): "
                         f"{'; '.join(differing)}. Rebuild them (text2token targets build) or change the run's "
                         f"options to match")
    return TargetSpec(**{k: v for k, v in info.spec.items() if k != "key"}) if info.spec else None
