"""The Hub side of text2token's models: the model card filled from real run data, and the push of a
trained model (see `hub_targets` for target datasets, re-exported here).

Cards are jinja2 templates in `model_cards/`, rendered with `ModelCard.from_template` /
`DatasetCard.from_template`, so their YAML header is proper card data (license, tags, base model...).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .cards import (DROP_REASONS, METHOD_KINDS, MODEL_CARD_TEMPLATE, PAPER_BIBTEX, cell_text, framework_versions,
                    hub_repo_id, library_bibtex, number_text, package_version, replace_section, template_source,
                    usage_path)
from .backbones import portable_backbone_name
from .lineage import resolve_lineage
from .hub_targets import load_target_dataset, push_targets_to_hub, render_dataset_card
from .targets.schema import TargetInfo

__all__ = ["export_model_card", "load_target_dataset", "push_model_to_hub", "push_targets_to_hub",
           "render_dataset_card", "render_model_card", "update_model_card_scores"]

logger = logging.getLogger(__name__)

# What the Hub and sentence-transformers users search model cards by (the folder loads in both).
MODEL_TAGS = ["text2token", "sentence-transformers", "feature-extraction", "sentence-similarity", "mteb",
              "sentence-embeddings"]
STAGES = {"data": "stage 1 (data-driven targets)", "model": "stage 2 (model-derived targets)"}


# ----------------------------------------------------------------------------- model cards
def _loss_points(log_history: Sequence[Mapping]) -> tuple[dict | None, dict | None, str | None]:
    """First and last logged training loss (with their steps), and Trainer's run-mean `train_loss`."""
    logged = [{"step": e.get("step", "?"), "loss": number_text(float(e["loss"]))} for e in log_history if "loss" in e]
    train_loss = next((number_text(float(e["train_loss"])) for e in reversed(log_history) if "train_loss" in e), None)
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
    return [(name, cell_text(value)) for name, value in rows]


def _lora_line(lora: Mapping | None, merged: bool) -> str:
    if not lora:
        return "no unmerged adapter (any LoRA trained before is merged into the weights)"
    modules = ", ".join(lora.get("target_modules") or [])
    state = "merged into the published weights" if merged else "unmerged: loading re-injects it, with peft"
    return (f"r={lora['r']}, alpha={lora['lora_alpha']}, dropout={lora['lora_dropout']} "
            f"on {modules} ({state})")


def score_rows(eval_results: Mapping | None, cut: str | None = None) -> list[dict]:
    """`{task: score}` or `{task: {metric: score}}` as card rows (task, type, metric, value, cut, baseline)."""
    rows = []
    for task, score in sorted((eval_results or {}).items()):
        metrics = score.items() if isinstance(score, Mapping) else [("main_score", score)]
        rows += [{"task": task, "type": None, "metric": metric, "value": float(value), "cut": cut, "baseline": None}
                 for metric, value in metrics if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return rows


def _model_index(rows: Sequence[Mapping]) -> list[EvalResult] | None:
    """Scores in the Hub's evaluation-results format (the card's `model-index`): one entry per task and
    metric, the cut it was scored on as the dataset config."""
    return [EvalResult(task_type="feature-extraction", task_name=row.get("type"), dataset_type=row["task"],
                       dataset_name=row["task"], dataset_config=row.get("cut"), metric_type=row["metric"],
                       metric_value=float(row["value"]))
            for row in rows] or None


def _score(value: float) -> str:
    return f"{value:.4f}" if abs(value) <= 1 else f"{value:.2f}"  # 0-1 scores keep their digits, x100 ones two


def _evaluation_section(rows: Sequence[Mapping]) -> str:
    if not rows:
        return "No evaluation results were recorded with this card."
    baseline = any(row.get("baseline") is not None for row in rows)
    lines = ["| task | type | metric | cut | score |" + (" untrained backbone |" if baseline else ""),
             "|---|---|---|---|---:|" + ("---:|" if baseline else "")]
    for row in rows:
        cells = [row["task"], row.get("type") or "", row["metric"], row.get("cut") or "full", _score(row["value"])]
        if baseline:
            cells.append(_score(row["baseline"]) if row.get("baseline") is not None else "")
        lines.append("| " + " | ".join(cell_text(c) for c in cells) + " |")
    cuts = sorted({row.get("cut") for row in rows if row.get("cut")})
    if cuts:
        lines.append(f"\nCut {', '.join(cuts)}: each task capped at that many rows (`--eval_quick`): a fast "
                     "check, not comparable with whole-suite or MTEB scores.")
    return "\n".join(lines)


def _limitations_section(config, rows: Sequence[Mapping], language: str) -> str:
    lines = [f"- Trained on {language} text only (English stopwords shape its targets); other languages are untested.",
             f"- Trained on texts of up to {config.max_length} tokens; it reads up to "
             f"{getattr(config, 'encode_length', config.max_length)} tokens per text at inference, longer texts are "
             "cut there."]
    below = [row for row in rows if row.get("baseline") is not None and row["value"] < row["baseline"]]
    for row in below:
        cut = f" ({row['cut']})" if row.get("cut") else ""
        lines.append(f"- {row['task']}{cut}: {_score(row['value'])} against the untrained backbone's "
                     f"{_score(row['baseline'])}, a drop of {row['baseline'] - row['value']:.2f}: this model is "
                     "worse than its untrained backbone on this kind of task.")
    if rows and not below and any(row.get("baseline") is not None for row in rows):
        lines.append("- It scored at or above the untrained backbone on every task of the table above.")
    if not rows:
        lines.append("- No evaluation was recorded: measure it on your task before relying on it.")
    return "\n".join(lines)


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
    scores: Sequence[Mapping] | None = None,
    lora_merged: bool = True,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: str | Sequence[str] | None = None,
    dataset_ids: str | Sequence[str] | None = None,
    output_dir: str | None = None,
) -> ModelCard:
    """The model card of a Text2Token model (`config`: its `Text2TokenConfig`, or the model itself),
    filled from whatever run data is given: target metadata, `TrainingArguments`,
    `trainer.state.log_history`, and evaluation scores: `eval_results` (task -> score) or `scores` (rows
    with task, type, metric, value, cut and the untrained backbone's `baseline`).
    `base_model`: what the run started from (Hub id, folder or the embedded default): the card cites the
    original backbone and its license, and a trained Text2Token folder as the parent stage."""
    config = getattr(config, "config", config)
    targets = [targets] if isinstance(targets, TargetInfo) else list(targets or [])
    log_history = list(log_history or [])
    lm = config.lm_config
    source = base_model or next((t.backbone for t in targets if t.backbone), None) or getattr(lm, "_name_or_path", "")
    lineage = resolve_lineage(source, fetch_card=license is None or language is None)
    backbone = lineage.name(portable_backbone_name(source) if source else "unknown")  # never a machine path
    repo_id = repo_id or config._name_or_path or "path/to/this/model"
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    hub_datasets = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids or [])
    # Hub ids and text2token's named corpora; a local file's name@sha256 says nothing to a Hub reader.
    hub_datasets += lineage.datasets + [t.corpus for t in targets if t.corpus and "@" not in t.corpus
                                        and (hub_repo_id(t.corpus) or "/" not in t.corpus)]
    model_name = model_name or repo_id.rstrip("/").split("/")[-1]
    rows = list(scores or []) or score_rows(eval_results)
    license = license or lineage.license or "other"  # the backbone's license binds the fine-tuned weights
    # The targets drop English stopwords, so the language defaults to English where the backbone does not say.
    language = language or lineage.language or "en"
    data = ModelCardData(
        license=license, language=language,
        library_name="sentence-transformers", pipeline_tag="sentence-similarity",
        tags=list(dict.fromkeys(MODEL_TAGS + tags)), base_model=lineage.base_model or hub_repo_id(source),
        datasets=list(dict.fromkeys(hub_datasets)) or None,
        model_name=model_name, eval_results=_model_index(rows),
    )
    first, last, train_loss = _loss_points(log_history)
    target_rows = [{
        "info": t, "kind": METHOD_KINDS.get(t.method, t.method),
        "params": [(k, cell_text(v)) for k, v in sorted(t.params.items())],
        "dropped": ", ".join(f"{n} ({DROP_REASONS.get(k, k)})" for k, n in sorted(t.dropped.items())),
        "mean_size": number_text(t.stats["mean_target_size"]) if "mean_target_size" in t.stats else None,
    } for t in targets]
    language_text = "English" if language in ("en", ["en"]) else ", ".join([language] if isinstance(language, str)
                                                                          else language)
    version = package_version("text2token") or "unknown"
    return ModelCard.from_template(
        data, **template_source(MODEL_CARD_TEMPLATE), config=config, repo_id=repo_id, backbone=backbone,
        backbone_url=f"https://huggingface.co/{lineage.base_model}" if lineage.base_model else None,
        parent=lineage.parent, license=None if license == "other" else license, model_name=model_name,
        architecture=(getattr(lm, "architectures", None) or [lm.model_type])[0],
        num_layers=getattr(lm, "num_hidden_layers", "?"), hidden_size=lm.hidden_size, vocab_size=lm.vocab_size,
        lora=_lora_line(config.lora, lora_merged),
        prompts=sorted((getattr(config, "prompts", None) or {}).items()),
        similarity=getattr(config, "similarity", None) or "cosine",
        stages=list(dict.fromkeys(STAGES.get(t.method, t.method) for t in targets)), targets=target_rows,
        hyperparameters=_hyperparameters(training_args, config, log_history) if training_args else [],
        first_loss=first, last_loss=last, train_loss=train_loss,
        evaluation_section=_evaluation_section(rows),
        limitations_section=_limitations_section(config, rows, language_text),
        language_text=language_text, encode_length=getattr(config, "encode_length", config.max_length),
        usage_path=usage_path(repo_id, output_dir), frameworks=framework_versions(),
        paper_bibtex=PAPER_BIBTEX, library_bibtex=library_bibtex(version),
    )


def update_model_card_scores(folder: str | os.PathLike, scores: Sequence[Mapping]) -> Path:
    """Put evaluation `scores` (rows as `render_model_card` takes them) into the card a run saved in
    `folder`: its `model-index`, Evaluation and Limitations sections. Written atomically."""
    from .configuration import Text2TokenConfig

    path = Path(folder) / "README.md"
    card = ModelCard.load(path)
    config = Text2TokenConfig.from_pretrained(folder)
    language = card.data.language or "en"
    language_text = "English" if language in ("en", ["en"]) else ", ".join(
        [language] if isinstance(language, str) else language)
    card.data.eval_results = _model_index(scores)
    card.data.model_name = card.data.model_name or Path(folder).name
    text = replace_section(card.text, "evaluation", _evaluation_section(scores))
    card.text = replace_section(text, "limitations", _limitations_section(config, scores, language_text))
    card.save(f"{path}.tmp")
    os.replace(f"{path}.tmp", path)
    return path


EXPORT_USAGE = """With [sentence-transformers](https://sbert.net) alone (no `text2token`, no remote code): this
folder is the backbone{merged} as a standard `{architecture}` checkpoint, followed by sentence-transformers'
own Transformer -> Pooling (mean){normalize} modules, reading up to {length} tokens per text.

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{path}")
embeddings = model.encode(["a vessel for travel on water", "a small boat"])
model.similarity(embeddings, embeddings)  # cosine
```"""


def export_model_card(source: str | os.PathLike | None, config, *, normalize: bool, path: str | None = None) -> ModelCard:
    """The card of a plain sentence-transformers export of the model in `source`: that folder's card (its
    metadata, run data and scores) with the export's usage, or one rendered from `config` without a card."""
    readme = Path(source, "README.md") if source is not None else None
    card = ModelCard.load(readme) if readme is not None and readme.is_file() else None
    if card is None or "<!-- usage -->" not in card.text:  # none, or a card older than its usage markers
        card = render_model_card(config, base_model=str(source) if source else None)
    lm = config.lm_config
    usage = EXPORT_USAGE.format(merged=" with the LoRA merged" if source else "",
                                architecture=(getattr(lm, "architectures", None) or [lm.model_type])[0],
                                normalize=" -> Normalize" if normalize else "",
                                length=getattr(config, "encode_length", config.max_length),
                                path=path or "path/to/this/export")
    card.text = replace_section(card.text, "usage", usage)
    return card


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
