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

from .cards import (DROP_REASONS, METHOD_KINDS, MODEL_CARD_TEMPLATE, cell_text, hub_repo_id, number_text,
                    template_source)
from .hub_targets import load_target_dataset, push_targets_to_hub, render_dataset_card
from .targets.schema import TargetInfo

__all__ = ["load_target_dataset", "push_model_to_hub", "push_targets_to_hub", "render_dataset_card",
           "render_model_card"]

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


def _backbone_card_data(backbone: str | None) -> ModelCardData | None:
    """The card data (license, language) of the backbone: its local README.md, else its Hub card."""
    if not backbone:
        return None
    try:
        readme = Path(backbone) / "README.md"
        if readme.is_file():
            return ModelCard.load(readme).data
        if hub_repo_id(backbone) and not os.environ.get("HF_HUB_OFFLINE"):
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
    hub_datasets += [t.corpus for t in targets if hub_repo_id(t.corpus)]
    model_name = model_name or repo_id.rstrip("/").split("/")[-1]
    upstream = _backbone_card_data(backbone) if license is None or language is None else None
    data = ModelCardData(
        # The backbone's license binds the fine-tuned weights; the targets drop English stopwords, so
        # the language defaults to English where the backbone card does not say.
        license=license or getattr(upstream, "license", None) or "other",
        language=language or getattr(upstream, "language", None) or "en",
        library_name="sentence-transformers", pipeline_tag="sentence-similarity",
        tags=list(dict.fromkeys(MODEL_TAGS + tags)), base_model=hub_repo_id(backbone),
        datasets=list(dict.fromkeys(hub_datasets)) or None,
        model_name=model_name, eval_results=_model_index(model_name, eval_results),
    )
    first, last, train_loss = _loss_points(log_history)
    target_rows = [{
        "info": t, "kind": METHOD_KINDS.get(t.method, t.method),
        "params": [(k, cell_text(v)) for k, v in sorted(t.params.items())],
        "dropped": ", ".join(f"{n} ({DROP_REASONS.get(k, k)})" for k, n in sorted(t.dropped.items())),
        "mean_size": number_text(t.stats["mean_target_size"]) if "mean_target_size" in t.stats else None,
    } for t in targets]
    scores = [(task, ", ".join(f"{m}: {number_text(v)}" for m, v in score.items()) if isinstance(score, Mapping)
               else number_text(score)) for task, score in sorted((eval_results or {}).items())]
    return ModelCard.from_template(
        data, **template_source(MODEL_CARD_TEMPLATE), config=config, repo_id=repo_id, backbone=backbone,
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
