"""`load(source)`: target datasets from a saved folder, a `.parquet` file or a Hub dataset repo (offline:
from the cache), with their `TargetInfo` attached. `datasets` keeps the rows and features on the Hub
but not `info.description`, where the metadata lives locally, hence `text2token_targets.json` beside
the shards of a pushed dataset (see `text2token.hub_targets.push_targets_to_hub`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import datasets
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.constants import HF_HUB_CACHE, is_offline_mode
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .schema import INFO_FILE, TARGET_IDS, TARGET_WEIGHTS, TargetInfo, attach_info, load_targets, read_info

logger = logging.getLogger(__name__)


def check_target_columns(dataset: datasets.Dataset, source) -> None:
    missing = [c for c in (TARGET_IDS, TARGET_WEIGHTS) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{source}: missing target column(s) {missing}; found {dataset.column_names}")


# What a local path looks like, so a mistyped one is named as such instead of being asked of the Hub.
_FILE_SUFFIXES = (".parquet", ".arrow", ".json", ".jsonl", ".csv", ".tsv", ".txt")


def _looks_like_path(source: str) -> bool:
    return (source.startswith(("./", "../", "/", "~", ".\\")) or source.lower().endswith(_FILE_SUFFIXES)
            or (os.sep != "/" and os.sep in source) or source.count("/") > 1)


def load(source: str | os.PathLike, split: str = "train", *, revision: str | None = None,
         token: str | None = None) -> datasets.Dataset:
    """Targets from a `save_to_disk` folder, a `.parquet` file or a Hub dataset repo, with their
    `TargetInfo` re-attached (read it back with `targets.read_info`)."""
    path = Path(source)
    if path.is_dir():
        return load_targets(path)
    if path.suffix == ".parquet":
        if not path.is_file():
            raise FileNotFoundError(f"{source} is not a folder or file: no such .parquet file")
        dataset = datasets.Dataset.from_parquet(str(path))
        sidecar = path.with_name(INFO_FILE)
        info = TargetInfo.from_json(sidecar.read_text(), source=str(sidecar)) if sidecar.is_file() else None
    elif path.exists():
        raise ValueError(f"{source} is a file but not a .parquet file: expected a saved target folder, "
                         "a .parquet file or a Hub dataset repo id")
    elif _looks_like_path(str(source)):
        raise FileNotFoundError(
            f"{source} is not a folder or file (it looks like a local path, so the Hub was not asked): expected a "
            "saved target folder, a .parquet file, or a Hub dataset repo id like 'owner/name'")
    else:
        dataset, info = _load_from_hub(str(source), split, revision, token)
    check_target_columns(dataset, source)
    if info is not None:
        attach_info(dataset, info)
    elif read_info(dataset) is None:
        logger.warning("%s has no %s: the targets load without their build metadata", source, INFO_FILE)
    return dataset


def _load_from_hub(repo_id: str, split: str, revision: str | None, token: str | None):
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(f"{repo_id!r} is neither a local path nor a Hub dataset repo id") from None
    if is_offline_mode():
        return _load_from_cache(repo_id, split, revision, token)
    try:
        # One commit for both downloads, so rows and metadata cannot come from different pushes.
        sha = HfApi(token=token).dataset_info(repo_id, revision=revision, token=token).sha
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"{repo_id!r} is neither a local path nor a dataset repo on the Hub") from None
    dataset = datasets.load_dataset(repo_id, split=split, revision=sha, token=token)
    try:
        info_path = hf_hub_download(repo_id, INFO_FILE, repo_type="dataset", revision=sha, token=token)
    except EntryNotFoundError:
        return dataset, None
    return dataset, TargetInfo.from_json(Path(info_path).read_text(), source=f"{repo_id}/{INFO_FILE}")


def _load_from_cache(repo_id: str, split: str, revision: str | None, token: str | None):
    """HF_HUB_OFFLINE: the copy a previous online load cached, or a named error."""
    try:
        dataset = datasets.load_dataset(repo_id, split=split, revision=revision, token=token)
    except Exception as exc:  # datasets raises ConnectionError, FileNotFoundError or DatasetNotFoundError here
        raise FileNotFoundError(
            f"{repo_id!r}: HF_HUB_OFFLINE is set and this target dataset is not in the local cache "
            f"({datasets.config.HF_DATASETS_CACHE}): load it once online, or pass a saved target folder or "
            f".parquet file") from exc
    try:
        info_path = hf_hub_download(repo_id, INFO_FILE, repo_type="dataset", revision=revision, token=token,
                                    local_files_only=True)
    except (LocalEntryNotFoundError, EntryNotFoundError):
        # Online loads pin one commit (no ref is cached): take the newest cached snapshot's metadata.
        cached = sorted(Path(HF_HUB_CACHE, f"datasets--{repo_id.replace('/', '--')}", "snapshots").glob(f"*/{INFO_FILE}"),
                        key=lambda p: p.stat().st_mtime)
        if revision is None and cached:
            return dataset, TargetInfo.from_json(cached[-1].read_text(), source=str(cached[-1]))
        logger.warning("%s: offline, and its %s is not in the cache (%s)", repo_id, INFO_FILE, HF_HUB_CACHE)
        return dataset, None
    return dataset, TargetInfo.from_json(Path(info_path).read_text(), source=f"{repo_id}/{INFO_FILE}")


