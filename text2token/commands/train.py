"""Train one stage: `text2token train --config recipes/<model>/<stage>.yaml [--key value ...]`
(or `accelerate launch recipes/train.py ...`, the same command)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import datasets
import transformers

from ..alignment import AlignmentCallback, hold_out
from ..arguments import (
    DataArguments,
    ModelArguments,
    Text2TokenTrainingArguments,
    check_recipe,
    parse_recipe_args,
)
from ..backbones import portable_backbone_name, resolve_backbone
from ..checkpointing import last_complete_checkpoint
from ..command_line import check_model_path
from ..corpora import load_corpus
from ..digests import weights_digest
from ..distributed import wait_for_path
from ..factory import build_model, is_text2token_checkpoint, lora_settings
from ..files import write_atomic
from ..graceful_stop import StopOnSignal
from ..losses import loss_class
from ..modeling import Text2TokenModel
from ..output_folder import claim_output_folder
from ..output_lock import release_output_lock
from ..run_record import RUN_RECORD, check_resume, recipe_record, run_record
from ..targets import check_supplied, load, obtain
from ..targets.spec import METHODS
from ..trainer import Text2TokenTrainer
from .targets import load_target_corpus, target_spec

logger = logging.getLogger("text2token.train")
COMPLETE_MARKER = "training_complete.json"


RECIPE_ARGUMENTS = (ModelArguments, DataArguments, Text2TokenTrainingArguments)


def parse_args(argv: list[str] | None = None, overrides: dict | None = None):
    """`(model_args, data_args, training_args)` from `--config YAML` and command-line flags, then
    `overrides` (option -> value, e.g. the pipeline's output_dir), checked for conflicting options."""
    args = parse_recipe_args(RECIPE_ARGUMENTS, argv, overrides=overrides)
    check_recipe(*args)
    return args


def output_folder_rules(model_args: ModelArguments, data_args: DataArguments, training_args) -> dict:
    """What `output_dir` must not overlap (the run's inputs) and the records that make it this kind
    of run's own folder (see `text2token.output_folder`)."""
    return {"option": "output_dir", "records": (RUN_RECORD, COMPLETE_MARKER),
            "overwrite": bool(getattr(training_args, "overwrite", False)),
            "inputs": {"backbone": resolve_backbone(model_args.backbone), "targets": data_args.targets,
                       "corpus": data_args.corpus}}


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

    source = resolve_backbone(model_args.backbone)
    lock = None
    if training_args.should_save:  # before anything is loaded or written: the folder's contract and lock
        lock = claim_output_folder(training_args.output_dir, **output_folder_rules(model_args, data_args, training_args))
    model = build_model(model_args)
    # The starting weights' digest when they are a trained Text2Token folder (stage 2's stage 1): the
    # pipeline retrains a stage whose starting point changed.
    backbone_digest = weights_digest(source) if is_text2token_checkpoint(source) else ""
    checkpoint = training_args.resume_from_checkpoint or last_complete_checkpoint(training_args.output_dir)
    # The targets are their own step, on every rank (not inside main_process_first): each rank encodes
    # its share of a model-derived corpus, and ranks that wait for the main process's save wait on the
    # file system, not in a collective that the process-group timeout would end.
    loss_cls = loss_class(training_args.loss)
    spec, corpus, supplied = plan_targets(model, data_args) if loss_cls.needs_targets else (None, None, None)
    targets_key = None
    if loss_cls.needs_targets:
        targets_key = spec.key() if spec is not None else f"unrecorded:{supplied._fingerprint}"
    # Before any target is rebuilt: a resume whose recipe or targets changed stops here, naming them.
    check_resume(training_args.output_dir, run_record(model_args, data_args, training_args,
                                                      targets_key=targets_key, backbone_digest=backbone_digest),
                 checkpoint=checkpoint, write=training_args.should_save)
    if not loss_cls.needs_targets:
        with training_args.main_process_first(desc="loading the corpus"):  # a short read, cached once
            train_dataset = load_training_texts(data_args)
    elif supplied is not None:
        train_dataset = supplied
    else:  # model-derived targets come from the model as it is (frozen, no adapter): before add_lora
        train_dataset = obtain(spec, corpus, model, Path(training_args.output_dir) / "targets",
                               shard_size=data_args.target_shard_size, num_proc=data_args.target_num_proc,
                               backbone=portable_backbone_name(model_args.backbone), allow_cpu=training_args.use_cpu)
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
    stop = StopOnSignal()  # SIGTERM / Ctrl-C: finish the step, save a checkpoint, stop
    trainer.add_callback(stop)
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if stop.stopped_at_step is not None:
        if lock is not None:
            release_output_lock(lock)
        logger.error(stop.stopped_message(training_args.output_dir, stop.stopped_at_step))
        raise SystemExit(stop.exit_code)
    trainer.save_model()
    if trainer.is_world_process_zero():
        losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        summary = {"global_step": trainer.state.global_step, "train_runtime_s": result.metrics.get("train_runtime"),
                   "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                   "backbone_digest": backbone_digest,
                   "recipe": recipe_record(model_args, data_args, training_args)}
        write_atomic(Path(training_args.output_dir) / COMPLETE_MARKER, json.dumps(summary, indent=2))
        logger.info("Saved the trained model to %s (%s)", training_args.output_dir, summary)
    else:  # what follows (the pipeline's next stage) reads the main process's final save
        wait_for_path(Path(training_args.output_dir) / COMPLETE_MARKER, what="the completion marker")
    return training_args.output_dir


def plan_targets(model: Text2TokenModel, args: DataArguments):
    """`(spec, corpus slice, None)` for targets to reuse or build, or `(their recorded spec or None,
    None, targets)` for the user's prebuilt `--targets` (a folder, a .parquet file or a Hub dataset
    id), refused naming the fields where they differ from what the run's options ask for."""
    if args.target_method not in METHODS:
        raise ValueError(f"target_method={args.target_method!r}: expected one of {METHODS}")
    if args.targets:
        supplied = load(args.targets)
        spec = check_supplied(supplied, args.targets, method=args.target_method, tokenizer=model.tokenizer,
                              top_k=args.target_top_k, temperature=args.target_temperature)
        return spec, None, supplied
    corpus = load_target_corpus(args)
    if args.target_method == "model":
        if model.config.lora is not None:
            raise ValueError("model-derived targets need the frozen starting model: build them before add_lora")
        if not is_text2token_checkpoint(model.config._name_or_path or ""):
            raise ValueError(f"target_method=model derives targets from a trained Text2Token model (stage 1), but "
                             f"backbone={model.config._name_or_path!r} is not one: train stage 1 first and pass its "
                             f"output folder")
    return target_spec(args, corpus, model), corpus, None


def load_training_texts(args: DataArguments) -> datasets.Dataset:
    """The corpus as a `text` column without empty rows: what the SimCSE and MNTP objectives train on."""
    corpus = load_corpus(args.corpus, text_column=args.text_column, split=args.corpus_split,
                         max_rows=args.max_train_samples, data_files=args.corpus_data_files)
    corpus = corpus.select_columns([args.text_column])
    if args.text_column != "text":
        corpus = corpus.rename_column(args.text_column, "text")
    kept = corpus.filter(lambda text: isinstance(text, str) and bool(text.strip()), input_columns="text")
    if len(kept) < len(corpus):
        logger.warning("%d empty or non-text rows of %s are skipped", len(corpus) - len(kept), args.corpus)
    return kept


if __name__ == "__main__":
    main()
