"""Target datasets pushed to the Hub in one commit with their card and `TargetInfo`
(`text2token_targets.json` beside the shards). `text2token.targets.load` reads them back;
`load_target_dataset` is its name here.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping

import datasets
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, DatasetCard, DatasetCardData, HfApi
from huggingface_hub.errors import RevisionNotFoundError

from .cards import (DATASET_CARD_TEMPLATE, DROP_REASONS, METHOD_KINDS, TAGS, cell_text, hub_repo_id, number_text,
                    template_source)
from .targets.schema import INFO_FILE, TargetInfo, read_info
from .targets.sources import check_target_columns
from .targets.sources import load as load_target_dataset

__all__ = ["load_target_dataset", "push_targets_to_hub", "render_dataset_card"]


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
    check_target_columns(dataset, "push_targets_to_hub(dataset)")
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
