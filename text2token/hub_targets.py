"""Target datasets on the Hub: pushed in one commit with their card and `TargetInfo`, loaded back
from a local folder, a parquet file or a Hub repo (offline: from the cache) with the metadata attached.
`datasets` keeps the rows and features on the Hub but not `info.description`, where the metadata
lives locally, hence the `text2token_targets.json` beside the shards.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import datasets
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    DatasetCardData,
    HfApi,
    hf_hub_download,
)
from huggingface_hub.constants import HF_HUB_CACHE, is_offline_mode
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .cards import (DATASET_CARD_TEMPLATE, DROP_REASONS, METHOD_KINDS, TAGS, cell_text, hub_repo_id, number_text,
                    template_source)
from .targets.schema import INFO_FILE, TARGET_IDS, TARGET_WEIGHTS, TargetInfo, attach_info, load_targets, read_info

logger = logging.getLogger(__name__)


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "n>10M"


def _split_stats(stats: Mapping) -> tuple[list, list]:
    """Scalar statistics, and token lists (`[[token, value], ...]`) such as the top target tokens."""
    scalars, tokens = [], []
    for name, value in sorted(stats.items()):
        if isinstance(value, (int, float)):
            scalars.append((name, number_text(value)))
        elif isinstance(value, list) and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
            # Shown as inline code outside tables: only a backtick would break it.
            tokens.append((name, [(repr(tok).replace("`", "'"), number_text(val)) for tok, val in value]))
        else:
            scalars.append((name, cell_text(value)))
    return scalars, tokens


def _check_target_columns(dataset: datasets.Dataset, source) -> None:
    missing = [c for c in (TARGET_IDS, TARGET_WEIGHTS) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{source}: missing target column(s) {missing}; found {dataset.column_names}")


# ----------------------------------------------------------------------------- target datasets
def render_dataset_card(info: TargetInfo, repo_id: str, *, license: str | None = None,
                        pretty_name: str | None = None, card_data: Mapping | None = None) -> DatasetCard:
    """The dataset card of a target dataset; `card_data` keeps YAML already on the Hub
    (`dataset_info`, `configs` written by `Dataset.push_to_hub`)."""
    kind = METHOD_KINDS.get(info.method, info.method)
    extra = {k: v for k, v in (card_data or {}).items() if k in ("dataset_info", "configs")}
    # The layout both `Dataset.push_to_hub` and `push_targets_to_hub` write, unless the push said otherwise.
    extra.setdefault("configs", [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}])
    source = hub_repo_id(info.corpus)
    data = DatasetCardData(
        license=license or "other", tags=[*TAGS, f"{kind}-targets"], task_categories=["feature-extraction"],
        size_categories=[_size_category(info.num_rows)], pretty_name=pretty_name or f"Text2Token {kind} targets",
        source_datasets=[source] if source else ["original"], **extra,
    )
    scalar_stats, token_stats = _split_stats(info.stats)
    return DatasetCard.from_template(
        data, **template_source(DATASET_CARD_TEMPLATE), info=info, kind=kind, repo_id=repo_id,
        params=[(k, cell_text(v)) for k, v in sorted(info.params.items())],
        dropped=[(DROP_REASONS.get(k, k), n) for k, n in sorted(info.dropped.items())],
        scalar_stats=scalar_stats, token_stats=token_stats,
    )


def push_targets_to_hub(dataset: datasets.Dataset, repo_id: str, *, private: bool = False, token: str | None = None,
                        commit_message: str = "Upload Text2Token targets", license: str | None = None,
                        info: TargetInfo | None = None, split: str = "train",
                        max_shard_size: int = 500 * 2**20):
    """Push a target dataset with its card and `text2token_targets.json` in ONE commit (parquet shards
    written locally first), so the repo never holds rows without their metadata or with a stale one.
    Shards of `split` left by an earlier push and not rewritten now are deleted in the same commit."""
    info = info or read_info(dataset)
    if info is None:
        raise ValueError("the dataset carries no TargetInfo (build it with a text2token target builder, "
                         "or pass info=...): the card and the tokenizer check need it")
    _check_target_columns(dataset, "push_targets_to_hub(dataset)")
    # Everything is checked before the commit, so a bad call leaves the repo as it was.
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True).repo_id
    try:
        existing = api.list_repo_files(repo_id, repo_type="dataset")
    except RevisionNotFoundError:  # an empty repo has no main branch yet
        existing = []
    with tempfile.TemporaryDirectory() as folder:
        num_shards = max(1, math.ceil(dataset.data.nbytes / max_shard_size))
        shards = [f"data/{split}-{i:05d}-of-{num_shards:05d}.parquet" for i in range(num_shards)]
        operations = []
        for index, name in enumerate(shards):
            local = os.path.join(folder, f"shard-{index}.parquet")
            dataset.shard(num_shards, index, contiguous=True).to_parquet(local)
            operations.append(CommitOperationAdd(name, local))
        card_data = {"configs": [{"config_name": "default", "data_files": [{"split": split, "path": f"data/{split}-*"}]}],
                     "dataset_info": {"features": dataset.features._to_yaml_list(),
                                      "splits": [{"name": split, "num_examples": len(dataset)}]}}
        card = render_dataset_card(info, repo_id, license=license, card_data=card_data)
        operations += [CommitOperationAdd("README.md", str(card).encode("utf-8")),
                       CommitOperationAdd(INFO_FILE, info.to_json().encode("utf-8"))]
        operations += [CommitOperationDelete(f) for f in existing
                       if f.startswith(f"data/{split}-") and f not in shards]
        return api.create_commit(repo_id, repo_type="dataset", operations=operations, commit_message=commit_message)


# What a local path looks like, so a mistyped one is named as such instead of being asked of the Hub.
_FILE_SUFFIXES = (".parquet", ".arrow", ".json", ".jsonl", ".csv", ".tsv", ".txt")


def _looks_like_path(source: str) -> bool:
    return (source.startswith(("./", "../", "/", "~", ".\\")) or source.lower().endswith(_FILE_SUFFIXES)
            or (os.sep != "/" and os.sep in source) or source.count("/") > 1)


def load_target_dataset(source: str | os.PathLike, split: str = "train", *, revision: str | None = None,
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
    _check_target_columns(dataset, source)
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


