"""`Text2TokenTrainer`: a `Trainer` that only orchestrates; a loss module (`text2token.losses`) computes the loss."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch
from huggingface_hub import HfApi
from transformers import Trainer
from transformers.trainer_utils import HubStrategy, get_last_checkpoint, rotate_checkpoints
from transformers.utils.hub import PushInProgress

from .checkpointing import (
    FINAL_STAGING_DIR,
    STAGING_DIR,
    NonFiniteLossError,
    NonFiniteWeightsError,
    check_resumable,
    clear,
    describe_batch,
    first_non_finite_parameter,
    publish_checkpoint,
    publish_files,
    recover_replaced_checkpoints,
    write_manifest,
)
from .collator import Text2TokenCollator
from .distributed import ranks_where
from .hub import render_model_card
from .hub_push import UPLOAD_PREFIX, snapshot_model_files, upload_model_files, upload_snapshot
from .losses import Text2TokenLoss, build_loss
from .output_lock import acquire_output_lock
from .targets.schema import TARGET_IDS, check_tokenizer, read_info, validate_targets

logger = logging.getLogger(__name__)


class Text2TokenTrainer(Trainer):
    """Trains a `Text2TokenModel` on a dataset with `text`, `target_ids` and `target_weights`.

    - The objective is `loss`, a module of `text2token.losses` holding the model (default: the one
      `args.loss` names, else `TokenTargetLoss`); its `components` are averaged into each training log.
    - The collator (tokenize + pad sparse targets) is built from the model's own settings.
    - Targets built with another tokenizer are refused before any step runs, and so are targets that
      carry no `TargetInfo` unless `args.allow_unverified_targets` is set.
    - One run per output folder (a lock file); checkpoints are staged and renamed into place; no
      checkpoint is saved from non-finite weights.
    - Checkpoints keep the LoRA adapter unmerged (so they resume); the final `save_model` merges it
      when `args.merge_lora_on_save` is true (the default of `Text2TokenTrainingArguments`).
    - The final save writes README.md, a model card filled from this run; `push_to_hub` publishes it
      with the other model files of that save, and nothing else from the output folder.
    """

    def __init__(self, model=None, args=None, data_collator=None, train_dataset=None, eval_dataset=None,
                 processing_class=None, loss: Text2TokenLoss | str | None = None, **kwargs):
        processing_class = processing_class or model.tokenizer
        unverified_ok = bool(getattr(args, "allow_unverified_targets", False))
        for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if dataset is not None and TARGET_IDS in (getattr(dataset, "column_names", None) or []):
                info = read_info(dataset) if hasattr(dataset, "info") else None
                check_tokenizer(info, processing_class, allow_unverified=unverified_ok, source=name)
                validate_targets(dataset, model.config.lm_config.vocab_size, source=name)
        if args is not None and args.push_to_hub and args.hub_strategy in (HubStrategy.CHECKPOINT,
                                                                          HubStrategy.ALL_CHECKPOINTS):
            raise ValueError(f"hub_strategy={args.hub_strategy.value!r} uploads whole checkpoints (pickled optimizer, "
                             "scheduler and RNG states); text2token pushes only model files: use hub_strategy="
                             "'every_save' or 'end'")
        if data_collator is None:
            data_collator = Text2TokenCollator(processing_class, max_length=model.config.max_length,
                                               prompt=model.config.prompt)
        if args is not None and args.remove_unused_columns:
            # The collator needs the raw `text` column, which `forward` does not take.
            logger.info("Setting remove_unused_columns=False: the collator tokenizes the `text` column itself")
            args.remove_unused_columns = False
        self._merge_on_save = self._final_save = self._pushing = False
        self._target_infos = [info for info in (read_info(train_dataset),) if info is not None] \
            if hasattr(train_dataset, "info") else []
        # What the run started from (Hub id, folder, embedded alias), so the card cites the original
        # backbone and its license; `text2token train` sets it. Default: the config's portable name.
        self.model_card_base_model: str | None = None
        # The objective is a loss module (text2token.losses); by default the one `args.loss` names.
        if loss is None or isinstance(loss, str):
            loss = build_loss(loss or getattr(args, "loss", None) or "token_targets", model, args)
        if loss.encoder is not model:
            raise ValueError(f"the {type(loss).__name__} given as loss= holds another model than the trainer's")
        self.loss = loss
        self._loss_components: dict = {}
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)
        if self.args.should_save:
            # Before touching anything in the folder: another live run there would lose its staging.
            acquire_output_lock(self.args.output_dir)
            recover_replaced_checkpoints(self.args.output_dir)
            for leftover in Path(self.args.output_dir).glob(f"{UPLOAD_PREFIX}*"):  # a killed run's uploads
                clear(leftover)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss.model is not model:  # the wrapped (DDP, compiled) model, so gradients synchronise
            self.loss.model = model
        result = self.loss(inputs)
        loss = result.loss
        non_finite = not bool(torch.isfinite(loss.detach()).all())
        if self.args.world_size > 1:
            # Every rank stops at the same step: one rank alone saving (a collective) and raising would
            # leave the others in the backward pass's all-reduce until the process-group timeout.
            bad_ranks = ranks_where(non_finite, device=loss.device)
            non_finite = bool(bad_ranks)
        if non_finite:
            self._stop_on_non_finite_loss(loss, inputs, bad_ranks if self.args.world_size > 1 else None)
        if model.training:
            for name, value in result.components.items():
                self._loss_components[name] = self._loss_components.get(name, 0.0) + value.detach().float()
            self._loss_components["_batches"] = self._loss_components.get("_batches", 0) + 1
        return (loss, result.outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # The loss module's components, averaged over the batches since the last training log.
        if "loss" in logs and self._loss_components:
            batches = self._loss_components.pop("_batches")
            logs = {**logs, **{name: round(float(total) / batches, 6) for name, total in self._loss_components.items()}}
            self._loss_components = {}
        super().log(logs, start_time)

    def _stop_on_non_finite_loss(self, loss, inputs, bad_ranks: list[int] | None = None) -> None:
        # The weights are those of the last finished step: save them if they are finite (an overflowing
        # gradient under a finite loss may already have poisoned them), then stop loudly. Under several
        # processes every rank gets here at the same step and the save is the usual one-writer save.
        step = self.state.global_step
        batch = describe_batch(self.processing_class, inputs["input_ids"], inputs["attention_mask"])
        what = f"the loss is {loss.item()} at step {step + 1} (batch of {batch})"
        if bad_ranks is not None:
            where = "process " + ", ".join(map(str, bad_ranks))
            what = (f"the loss is NaN or infinite on {where} of {self.args.world_size} at step {step + 1}; on this "
                    f"process ({self.args.process_index}) " + what[len("the "):])
        self._refuse_non_finite_weights(what)
        self._save_checkpoint(self.model, trial=None)
        raise NonFiniteLossError(
            f"{what}; the state after step {step} is saved in {self.args.output_dir}/checkpoint-{step}. Lower the "
            f"learning rate, check these texts and their targets, or use fp32")

    def _refuse_non_finite_weights(self, what: str | None = None) -> None:
        """Raise before any save of non-finite weights, naming the last checkpoint that is still good
        (every saved checkpoint passed this check, so rotation never removes the last finite one)."""
        bad = first_non_finite_parameter(self.model)
        if self.args.world_size > 1:  # every rank must take the same branch
            flag = torch.tensor([float(bad is not None)], device=self.args.device)
            if self.accelerator.reduce(flag, reduction="sum").item() and bad is None:
                bad = "(on another process)"
        if bad is None:
            return
        step = self.state.global_step
        last = get_last_checkpoint(self.args.output_dir) if os.path.isdir(self.args.output_dir) else None
        raise NonFiniteWeightsError(
            f"{what + ': ' if what else ''}weight {bad} is NaN or infinite after step {step} (an overflowing "
            f"gradient?); nothing was saved. The last saved checkpoint is {last or 'none'}: resume from it with a "
            f"lower learning rate or max_grad_norm, or in fp32")

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is not None and not (self.is_deepspeed_enabled or self.is_fsdp_enabled
                                           or self.args.save_only_model):
            check_resumable(checkpoint)
        return super()._load_optimizer_and_scheduler(checkpoint)

    def _save_checkpoint(self, model, trial) -> None:
        # Trainer writes checkpoint-N file by file; write it under a staging folder and rename it into
        # place when complete, so a crash never leaves a half checkpoint under its final name.
        self._refuse_non_finite_weights()
        run_dir = self._get_output_dir(trial=trial)
        staging = os.path.join(run_dir, STAGING_DIR)
        if self.args.should_save:
            clear(staging)  # a crashed save's leftovers must not end up in this checkpoint
        self.accelerator.wait_for_everyone()
        self._get_output_dir = lambda trial=None: staging  # instance attribute shadows the method
        try:
            super()._save_checkpoint(model, trial)
        finally:
            del self._get_output_dir
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            final = publish_checkpoint(staging, run_dir, self.state.global_step)
            if self.state.best_model_checkpoint and self.state.best_model_checkpoint.startswith(staging):
                self.state.best_model_checkpoint = final
            if self.args.save_total_limit:
                rotate_checkpoints(output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                                   best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # `_internal_call` is how Trainer marks checkpoint saves; only a user-facing save, or the save
        # `push_to_hub` publishes, merges and writes the model card.
        self._final_save = not _internal_call or self._pushing
        self._merge_on_save = bool(getattr(self.args, "merge_lora_on_save", False)) and self._final_save
        try:
            super().save_model(output_dir, _internal_call)
        finally:
            self._merge_on_save = self._final_save = False

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, private: bool | None = None, **kwargs):
        """Trainer.push_to_hub, except that it uploads only the model files of the final save (see
        `hub_push`); `kwargs` go to `create_model_card` (e.g. `eval_results`)."""
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        model_name = kwargs.pop("model_name", None)
        if model_name is None and self.args.should_save:
            model_name = (self.args.hub_model_id or Path(self.args.output_dir).name).split("/")[-1]
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        self._pushing = True  # the save below is the final one: merged, with its card
        try:
            self.save_model(_internal_call=True)
        finally:
            self._pushing = False
        if not self.is_world_process_zero():
            return None
        tags = kwargs.pop("tags", None) or []
        tags = [tags] if isinstance(tags, str) else list(tags)
        kwargs["tags"] = list(dict.fromkeys(tags + list(getattr(self.model, "model_tags", None) or []))) or None
        self.create_model_card(model_name=model_name, **kwargs)
        self._finish_current_push()
        upload = dict(token=token, revision=revision if revision is not None else self.args.hub_revision,
                      commit_message=commit_message or "End of training")
        if blocking:
            return upload_model_files(self.args.output_dir, self.hub_model_id, **upload)
        return HfApi(token=token).run_as_future(upload_model_files, self.args.output_dir, self.hub_model_id, **upload)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Trainer's version copies weights into output_dir, pickles training_args.bin there and uploads
        # the whole folder; this uploads a snapshot of the checkpoint's model files only.
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        if not self.args.hub_always_push and self.push_in_progress is not None and not self.push_in_progress.is_done():
            return
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        snapshot = snapshot_model_files(
            checkpoint_folder, os.path.join(self.args.output_dir, f"{UPLOAD_PREFIX}{self.state.global_step}"))
        job = HfApi(token=self.args.hub_token).run_as_future(
            upload_snapshot, snapshot, self.hub_model_id, token=self.args.hub_token, revision=self.args.hub_revision,
            commit_message=f"Training in progress, step {self.state.global_step}")
        self._push_attempts = getattr(self, "_push_attempts", 0) + 1
        job.add_done_callback(functools.partial(self._note_failed_push, self.state.global_step))
        if self.push_in_progress is None or self.push_in_progress.is_done():
            self.push_in_progress = PushInProgress([job])
        else:
            self.push_in_progress.jobs.append(job)

    def _note_failed_push(self, step: int, job) -> None:
        """A checkpoint push ran in the background: its failure is a warning the user sees, not lost."""
        error = job.exception()
        if error is not None:
            self._failed_pushes = [*getattr(self, "_failed_pushes", []), step]
            logger.warning("Pushing checkpoint step %d to %s failed: %s: %s", step, self.hub_model_id,
                           type(error).__name__, str(error)[:300])

    def _finish_current_push(self) -> None:
        super()._finish_current_push()
        failed = getattr(self, "_failed_pushes", [])
        if failed and failed != getattr(self, "_summarised_pushes", None):
            self._summarised_pushes = list(failed)
            logger.warning("%d of %d checkpoint pushes to %s failed (steps %s): the Hub repo does not hold them. "
                           "Push the saved model again with trainer.push_to_hub() (or model.push_to_hub) once the Hub "
                           "accepts it", len(failed), self._push_attempts, self.hub_model_id,
                           ", ".join(map(str, failed)))

    def create_model_card(self, language=None, license=None, tags=None, model_name=None, finetuned_from=None,
                          tasks=None, dataset_tags=None, dataset=None, dataset_args=None, eval_results=None):
        """Trainer.push_to_hub calls this before uploading `output_dir`: write our card, not Trainer's.
        `eval_results` (task -> score) may be passed through `trainer.push_to_hub(eval_results=...)`."""
        if self.is_world_process_zero():
            self._write_model_card(self.args.output_dir, language=language, license=license, tags=tags,
                                   model_name=model_name, base_model=finetuned_from, dataset_ids=dataset,
                                   eval_results=eval_results)

    def _write_model_card(self, output_dir: str, **card_kwargs) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        run_data = {"targets": self._target_infos, "training_args": self.args,
                    "log_history": list(self.state.log_history), "base_model": self.model_card_base_model,
                    **{k: v for k, v in card_kwargs.items() if v is not None}}
        # So a later `model.push_to_hub(repo_id)` publishes this card too (named after that repo).
        model.model_card_data = {k: v for k, v in run_data.items() if k != "model_name"}
        merged = bool(getattr(self.args, "merge_lora_on_save", False))
        card = render_model_card(model.config, repo_id=self.hub_model_id or os.path.basename(
            os.path.normpath(self.args.output_dir)), lora_merged=merged, output_dir=self.args.output_dir,
                                 **run_data)
        path = os.path.join(output_dir, "README.md")
        card.save(f"{path}.tmp")
        os.replace(f"{path}.tmp", path)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        # A final save shares its folder with checkpoints and targets, so it cannot be renamed whole:
        # write it aside, then move it in file by file with config.json last (see publish_files).
        target, output_dir = output_dir, (os.path.join(output_dir, FINAL_STAGING_DIR) if self._final_save
                                          else output_dir)
        if self._final_save:
            clear(output_dir)  # a crashed save's leftovers must not be published with this one
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        model.save_pretrained(output_dir, state_dict=state_dict, merge_lora=self._merge_on_save,
                              safe_serialization=True)
        self.processing_class.save_pretrained(output_dir)
        if self._final_save:
            self._write_model_card(output_dir)
        # What a push uploads and what the next publish replaces: the model files, nothing of the run.
        write_manifest(output_dir, os.listdir(output_dir))
        # Arguments as JSON rather than Trainer's pickled training_args.bin: nothing here needs unpickling
        # (TrainingArguments.to_json_string masks hub_token).
        with open(os.path.join(output_dir, "training_args.json"), "w") as handle:
            handle.write(self.args.to_json_string())
        if self._final_save:
            publish_files(output_dir, target)
