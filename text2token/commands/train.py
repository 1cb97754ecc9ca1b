"""Train one stage: `text2token train --config recipes/<model>/<stage>.yaml [--key value ...]`
(or `accelerate launch recipes/train.py ...`, the same command)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import transformers

from ..alignment import AlignmentCallback, hold_out
from ..arguments import (
    DataArguments,
    ModelArguments,
    Text2TokenTrainingArguments,
    check_recipe,
    parse_recipe_args,
)
from ..backbones import resolve_backbone, weights_digest
from ..checkpointing import last_complete_checkpoint
from ..command_line import check_model_path
from ..distributed import wait_for_path
from ..factory import (
    build_model,
    is_text2token_checkpoint,
    load_training_texts,
    lora_settings,
    plan_targets,
    prepare_targets,
)
from ..losses import loss_class
from ..output_lock import acquire_output_lock
from ..run_record import check_resume, recipe_record, run_record
from ..trainer import Text2TokenTrainer

logger = logging.getLogger("text2token.train")
COMPLETE_MARKER = "training_complete.json"


RECIPE_ARGUMENTS = (ModelArguments, DataArguments, Text2TokenTrainingArguments)


def parse_args(argv: list[str] | None = None, overrides: dict | None = None):
    """`(model_args, data_args, training_args)` from `--config YAML` and command-line flags, then
    `overrides` (option -> value, e.g. the pipeline's output_dir), checked for conflicting options."""
    args = parse_recipe_args(RECIPE_ARGUMENTS, argv, overrides=overrides)
    check_recipe(*args)
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    # Here, not in check_recipe: a stage-2 recipe names a stage-1 folder that a pipeline has yet to train.
    check_model_path(args[0].backbone, "--backbone")
    return train(*args)


def train(model_args: ModelArguments, data_args: DataArguments, training_args: Text2TokenTrainingArguments) -> str:
    """Build the model and its targets, train, save (LoRA merged), write the completion marker;
    resumes from the output folder's last checkpoint. Returns the output folder."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout, force=True)
    transformers.set_seed(training_args.seed)

    model = build_model(model_args)
    # The starting weights' digest when they are a trained Text2Token folder (stage 2's stage 1): the
    # pipeline retrains a stage whose starting point changed.
    source = resolve_backbone(model_args.backbone)
    backbone_digest = weights_digest(source) if is_text2token_checkpoint(source) else ""
    if training_args.should_save:  # before the targets are built there: two runs must not share a folder
        acquire_output_lock(training_args.output_dir)
    checkpoint = training_args.resume_from_checkpoint or last_complete_checkpoint(training_args.output_dir)
    # The targets are their own step, on every rank (not inside main_process_first): each rank encodes
    # its share of a model-derived corpus, and ranks that wait for the main process's save wait on the
    # file system, not in a collective that the process-group timeout would end.
    loss_cls = loss_class(training_args.loss)
    plan = plan_targets(model, data_args) if loss_cls.needs_targets else None
    targets_key = (plan.spec.key() if plan.spec is not None else f"unrecorded:{plan.supplied._fingerprint}") \
        if plan is not None else None
    # Before any target is rebuilt: a resume whose recipe or targets changed stops here, naming them.
    check_resume(training_args.output_dir, run_record(model_args, data_args, training_args,
                                                      targets_key=targets_key, backbone_digest=backbone_digest),
                 checkpoint=checkpoint, write=training_args.should_save)
    if plan is None:
        with training_args.main_process_first(desc="loading the corpus"):  # a short read, cached once
            train_dataset = load_training_texts(data_args)
    else:
        train_dataset = prepare_targets(model, data_args, training_args.output_dir,
                                        backbone_name=model_args.backbone, plan=plan)
    model.add_lora(lora_settings(model_args))

    callbacks = []
    if training_args.alignment_every:
        train_dataset, held_out = hold_out(train_dataset, training_args.alignment_texts, seed=training_args.seed)
        callbacks.append(AlignmentCallback(held_out, training_args.alignment_every,
                                           plot_path=Path(training_args.output_dir) / "alignment.png"))
    trainer = Text2TokenTrainer(model=model, args=training_args, train_dataset=train_dataset,
                                loss=loss_cls.from_args(model, training_args))
    trainer.model_card_base_model = model_args.backbone  # the card cites the original backbone and its license
    for callback in callbacks:  # ahead of the report_to trackers and the console, which read what it adds to a log
        trainer.callback_handler.callbacks.insert(0, callback)
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    if trainer.is_world_process_zero():
        losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        summary = {"global_step": trainer.state.global_step, "train_runtime_s": result.metrics.get("train_runtime"),
                   "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                   "backbone_digest": backbone_digest,
                   "recipe": recipe_record(model_args, data_args, training_args)}
        marker = Path(training_args.output_dir) / COMPLETE_MARKER
        marker.with_suffix(".partial").write_text(json.dumps(summary, indent=2))
        marker.with_suffix(".partial").replace(marker)
        logger.info("Saved the trained model to %s (%s)", training_args.output_dir, summary)
    else:  # what follows (the pipeline's next stage) reads the main process's final save
        wait_for_path(Path(training_args.output_dir) / COMPLETE_MARKER, what="the completion marker")
    return training_args.output_dir


if __name__ == "__main__":
    main()
