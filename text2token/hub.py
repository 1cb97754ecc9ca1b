"""The Hub side of text2token: cards filled from real run data, models and target datasets pushed
and loaded back with their metadata.

Cards are jinja2 templates in `model_cards/`, rendered with `ModelCard.from_template` /
`DatasetCard.from_template`, so their YAML header is proper card data (license, tags, base model...).
A target dataset travels with `text2token_targets.json` (its `TargetInfo`): `datasets` keeps the
rows and features on the Hub but not `info.description`, where the metadata lives locally.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    DatasetCardData,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
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

from .targets.schema import INFO_FILE, TARGET_IDS, TARGET_WEIGHTS, TargetInfo, attach_info, load_targets, read_info

logger = logging.getLogger(__name__)



def _template_dir() -> Path:
    """`model_cards/` beside the package in a source checkout (the project's fixed layout), else the
    copy a wheel installs under `<prefix>/share/text2token/model_cards` (setup.cfg data_files)."""
    source = Path(__file__).resolve().parent.parent / "model_cards"
    installed = Path(sys.prefix) / "share" / "text2token" / "model_cards"
    return source if source.is_dir() or not installed.is_dir() else installed


TEMPLATE_DIR = _template_dir()
MODEL_CARD_TEMPLATE = TEMPLATE_DIR / "model_card.md"
DATASET_CARD_TEMPLATE = TEMPLATE_DIR / "dataset_card.md"
TAGS = ["text2token", "sentence-embeddings", "feature-extraction"]
# What the Hub and sentence-transformers users search model cards by (the folder loads in both).
MODEL_TAGS = ["text2token", "sentence-transformers", "feature-extraction", "sentence-similarity", "mteb",
              "sentence-embeddings"]
METHOD_KINDS = {"data": "data-driven", "model": "model-derived"}
STAGES = {"data": "stage 1 (data-driven targets)", "model": "stage 2 (model-derived targets)"}
DROP_REASONS = {"empty_target": "no content token left (stopwords or punctuation only)",
                "empty_text": "empty or whitespace-only text"}


# ----------------------------------------------------------------------------- helpers
def _template(path: Path) -> dict:
    if path.is_file():
        return {"template_path": str(path)}
    # An install without the source tree's model_cards/ still gets a valid (generic) card.
    logger.warning("card template %s not found: falling back to huggingface_hub's default template", path)
    return {}


def _hub_id(name: str | None) -> str | None:
    """`name` if it names a Hub repo (owner/name, not a local path), else None: YAML fields such as
    `base_model` must hold Hub ids."""
    if not name or os.path.exists(name) or name.count("/") != 1:
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _show(value) -> str:
    """A value for a markdown table cell: reprs for non-strings, no characters that break a table."""
    text = value if isinstance(value, str) else repr(value)
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else _show(value)


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
            scalars.append((name, _number(value)))
        elif isinstance(value, list) and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
            # Shown as inline code outside tables: only a backtick would break it.
            tokens.append((name, [(repr(tok).replace("`", "'"), _number(val)) for tok, val in value]))
        else:
            scalars.append((name, _show(value)))
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
    source = _hub_id(info.corpus)
    data = DatasetCardData(
        license=license or "other", tags=[*TAGS, f"{kind}-targets"], task_categories=["feature-extraction"],
        size_categories=[_size_category(info.num_rows)], pretty_name=pretty_name or f"Text2Token {kind} targets",
        source_datasets=[source] if source else ["original"], **extra,
    )
    scalar_stats, token_stats = _split_stats(info.stats)
    return DatasetCard.from_template(
        data, **_template(DATASET_CARD_TEMPLATE), info=info, kind=kind, repo_id=repo_id,
        params=[(k, _show(v)) for k, v in sorted(info.params.items())],
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
        info = TargetInfo.from_json(sidecar.read_text()) if sidecar.is_file() else None
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
    return dataset, TargetInfo.from_json(Path(info_path).read_text())


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
            return dataset, TargetInfo.from_json(cached[-1].read_text())
        logger.warning("%s: offline, and its %s is not in the cache (%s)", repo_id, INFO_FILE, HF_HUB_CACHE)
        return dataset, None
    return dataset, TargetInfo.from_json(Path(info_path).read_text())


# ----------------------------------------------------------------------------- model cards
def _loss_points(log_history: Sequence[Mapping]) -> tuple[dict | None, dict | None, str | None]:
    """First and last logged training loss (with their steps), and Trainer's run-mean `train_loss`."""
    logged = [{"step": e.get("step", "?"), "loss": _number(float(e["loss"]))} for e in log_history if "loss" in e]
    train_loss = next((_number(float(e["train_loss"])) for e in reversed(log_history) if "train_loss" in e), None)
    return (logged[0] if logged else None), (logged[-1] if logged else None), train_loss


def _hyperparameters(args, config, log_history: Sequence[Mapping]) -> list[tuple[str, str]]:
    per_device = args.per_device_train_batch_size
    accumulation = args.gradient_accumulation_steps
    world = getattr(args, "world_size", 1)
    steps = max((e.get("step", 0) for e in log_history), default=0) or args.max_steps
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    rows = [
        *([("objective", args.loss)] if getattr(args, "loss", None) else []),  # the loss module's name
        ("learning rate", args.learning_rate),
        ("batch size", f"{per_device} per device x {accumulation} accumulation x {world} device(s) "
                       f"= {per_device * accumulation * world}"),
        ("steps", steps if steps and steps > 0 else f"{args.num_train_epochs} epoch(s)"),
        ("max length", f"{config.max_length} tokens"),
        ("LR schedule", f"{schedule}, warmup {getattr(args, 'warmup_steps', 0)} steps"),
        ("weight decay", args.weight_decay),
        ("optimizer", getattr(args.optim, "value", args.optim)),
        ("precision", precision),
        ("seed", args.seed),
    ]
    return [(name, _show(value)) for name, value in rows]


def _lora_line(lora: Mapping | None, merged: bool) -> str:
    if not lora:
        return "no unmerged adapter (any LoRA trained before is merged into the weights)"
    modules = ", ".join(lora.get("target_modules") or [])
    state = "merged into the published weights" if merged else "unmerged: loading re-injects it, with peft"
    return (f"r={lora['r']}, alpha={lora['lora_alpha']}, dropout={lora['lora_dropout']} "
            f"on {modules} ({state})")


def _backbone_card_data(backbone: str | None) -> ModelCardData | None:
    """The card data (license, language) of the backbone: its local README.md, else its Hub card."""
    if not backbone:
        return None
    try:
        readme = Path(backbone) / "README.md"
        if readme.is_file():
            return ModelCard.load(readme).data
        if _hub_id(backbone) and not os.environ.get("HF_HUB_OFFLINE"):
            return ModelCard.load(backbone).data
    except Exception as exc:  # optional metadata: a missing or unreachable card must never stop a save
        logger.info("no card data for backbone %s (%s): license and language left to the caller", backbone, exc)
    return None


def _model_index(model_name: str, eval_results: Mapping | None) -> list[EvalResult] | None:
    """Scores in the Hub's evaluation-results format (the card's `model-index`): one entry per task and
    metric; a bare score is the task's `main_score`, as mteb names it."""
    results = []
    for task, score in sorted((eval_results or {}).items()):
        metrics = score.items() if isinstance(score, Mapping) else [("main_score", score)]
        for metric, value in metrics:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                results.append(EvalResult(task_type="feature-extraction", dataset_type=task, dataset_name=task,
                                          metric_type=metric, metric_value=float(value)))
    return results or None


def render_model_card(
    config,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    base_model: str | None = None,
    targets: TargetInfo | Sequence[TargetInfo] | None = None,
    training_args=None,
    log_history: Sequence[Mapping] | None = None,
    eval_results: Mapping[str, float] | None = None,
    lora_merged: bool = True,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: str | Sequence[str] | None = None,
    dataset_ids: str | Sequence[str] | None = None,
) -> ModelCard:
    """The model card of a Text2Token model (`config`: its `Text2TokenConfig`, or the model itself),
    filled from whatever run data is given: target metadata, `TrainingArguments`,
    `trainer.state.log_history`, and evaluation scores (task -> score)."""
    config = getattr(config, "config", config)
    targets = [targets] if isinstance(targets, TargetInfo) else list(targets or [])
    log_history = list(log_history or [])
    lm = config.lm_config
    backbone = base_model or next((t.backbone for t in targets if t.backbone), None) \
        or getattr(lm, "_name_or_path", "") or "unknown"
    repo_id = repo_id or config._name_or_path or "path/to/this/model"
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    hub_datasets = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids or [])
    hub_datasets += [t.corpus for t in targets if _hub_id(t.corpus)]
    model_name = model_name or repo_id.rstrip("/").split("/")[-1]
    upstream = _backbone_card_data(backbone) if license is None or language is None else None
    data = ModelCardData(
        # The backbone's license binds the fine-tuned weights; the targets drop English stopwords, so
        # the language defaults to English where the backbone card does not say.
        license=license or getattr(upstream, "license", None) or "other",
        language=language or getattr(upstream, "language", None) or "en",
        library_name="sentence-transformers", pipeline_tag="sentence-similarity",
        tags=list(dict.fromkeys(MODEL_TAGS + tags)), base_model=_hub_id(backbone),
        datasets=list(dict.fromkeys(hub_datasets)) or None,
        model_name=model_name, eval_results=_model_index(model_name, eval_results),
    )
    first, last, train_loss = _loss_points(log_history)
    target_rows = [{
        "info": t, "kind": METHOD_KINDS.get(t.method, t.method),
        "params": [(k, _show(v)) for k, v in sorted(t.params.items())],
        "dropped": ", ".join(f"{n} ({DROP_REASONS.get(k, k)})" for k, n in sorted(t.dropped.items())),
        "mean_size": _number(t.stats["mean_target_size"]) if "mean_target_size" in t.stats else None,
    } for t in targets]
    scores = [(task, ", ".join(f"{m}: {_number(v)}" for m, v in score.items()) if isinstance(score, Mapping)
               else _number(score)) for task, score in sorted((eval_results or {}).items())]
    return ModelCard.from_template(
        data, **_template(MODEL_CARD_TEMPLATE), config=config, repo_id=repo_id, backbone=backbone,
        model_name=model_name,
        architecture=(getattr(lm, "architectures", None) or [lm.model_type])[0],
        num_layers=getattr(lm, "num_hidden_layers", "?"), hidden_size=lm.hidden_size, vocab_size=lm.vocab_size,
        lora=_lora_line(config.lora, lora_merged),
        stages=list(dict.fromkeys(STAGES.get(t.method, t.method) for t in targets)), targets=target_rows,
        hyperparameters=_hyperparameters(training_args, config, log_history) if training_args else [],
        first_loss=first, last_loss=last, train_loss=train_loss, eval_results=scores,
    )


def push_model_to_hub(model, repo_id: str, *, merge_lora: bool = True, model_card: str | ModelCard | None = None,
                      commit_message: str | None = None, commit_description: str | None = None,
                      private: bool | None = None, token: str | None = None,
                      revision: str | None = None, create_pr: bool = False, max_shard_size: int | str = "50GB",
                      tags: Sequence[str] | None = None):
    """Save `model` (LoRA merged by default) with its modeling code and a model card, and upload it.

    The card is `model_card` if given; else one rendered from the run data the trainer left on the
    model (`model.model_card_data`); else a minimal one from the config alone.
    """
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if model_card is None:
        run_data = dict(getattr(model, "model_card_data", None) or {})
        earlier = run_data.get("tags") or []
        earlier = [earlier] if isinstance(earlier, str) else list(earlier)
        run_data["tags"] = [*earlier, *(tags or []), *(getattr(model, "model_tags", None) or [])]
        run_data["lora_merged"] = merge_lora
        model_card = render_model_card(model.config, repo_id=repo_id, **run_data)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, merge_lora=merge_lora, max_shard_size=max_shard_size)
        Path(folder, "README.md").write_text(str(model_card), encoding="utf-8")
        return api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision, create_pr=create_pr,
                                 commit_message=commit_message or "Upload Text2Token model",
                                 commit_description=commit_description)
