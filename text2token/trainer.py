"""`Text2TokenTrainer`: a `Trainer` that only orchestrates; the model computes its own loss."""

from __future__ import annotations

import logging
import os

import torch
from transformers import Trainer
from transformers.trainer_utils import rotate_checkpoints

from .checkpointing import (
    FINAL_STAGING_DIR,
    STAGING_DIR,
    NonFiniteLossError,
    describe_batch,
    publish_checkpoint,
    publish_files,
)
from .collator import Text2TokenCollator
from .losses import SimCSELoss
from .hub import render_model_card
from .targets.schema import TARGET_IDS, check_tokenizer, read_info, validate_targets

logger = logging.getLogger(__name__)

# token_targets: the paper's KL to target token distributions; simcse: the contrastive baseline.
OBJECTIVES = ("token_targets", "simcse")


class Text2TokenTrainer(Trainer):
    """Trains a `Text2TokenModel` on a dataset with `text`, `target_ids` and `target_weights`.

    - The collator (tokenize + pad sparse targets) is built from the model's own settings.
    - Targets built with another tokenizer are refused before any step runs.
    - Checkpoints keep the LoRA adapter unmerged (so they resume); the final `save_model` merges it
      when `args.merge_lora_on_save` is true (the default of `Text2TokenTrainingArguments`).
    - The final save writes README.md, a model card filled from this run; `push_to_hub` publishes it.
    """

    def __init__(self, model=None, args=None, data_collator=None, train_dataset=None, eval_dataset=None,
                 processing_class=None, **kwargs):
        processing_class = processing_class or model.tokenizer
        for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if dataset is not None and hasattr(dataset, "info"):
                check_tokenizer(read_info(dataset), processing_class)
                if TARGET_IDS in dataset.column_names:
                    validate_targets(dataset, model.config.lm_config.vocab_size, source=name)
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
        objective = getattr(args, "objective", "token_targets")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r}: expected one of {OBJECTIVES}")
        self._simcse_loss = SimCSELoss(getattr(args, "simcse_temperature", 0.05))
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if getattr(self.args, "objective", "token_targets") == "simcse":
            # The contrastive baseline: two passes, so dropout gives two views of each text.
            inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            view_a = model(**inputs, return_logits=False)
            view_b = model(**inputs, return_logits=False)
            loss = self._simcse_loss(view_a.embeddings, view_b.embeddings)
            return (loss, view_a) if return_outputs else loss
        outputs = model(**inputs, return_logits=return_outputs)
        if not torch.isfinite(outputs.loss.detach()).all():
            self._stop_on_non_finite_loss(outputs.loss, inputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _stop_on_non_finite_loss(self, loss, inputs) -> None:
        # The weights are still those of the last finished step: save them, then stop loudly.
        step = self.state.global_step
        self._save_checkpoint(self.model, trial=None)
        batch = describe_batch(self.processing_class, inputs["input_ids"], inputs["attention_mask"])
        raise NonFiniteLossError(
            f"the loss is {loss.item()} at step {step + 1} (batch of {batch}); the state after step {step} is "
            f"saved in {self.args.output_dir}/checkpoint-{step}. Lower the learning rate, check these texts and "
            f"their targets, or use fp32")

    def _save_checkpoint(self, model, trial) -> None:
        # Trainer writes checkpoint-N file by file; write it under a staging folder and rename it into
        # place when complete, so a crash never leaves a half checkpoint under its final name.
        if self.args.push_to_hub:
            # Trainer uploads each checkpoint folder in the background; renaming it mid-upload would
            # race, so pushed runs keep Trainer's in-place writes.
            return super()._save_checkpoint(model, trial)
        run_dir = self._get_output_dir(trial=trial)
        staging = os.path.join(run_dir, STAGING_DIR)
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

    def push_to_hub(self, *args, **kwargs):
        # Trainer.push_to_hub saves through save_model(_internal_call=True), like a checkpoint.
        self._pushing = True
        try:
            return super().push_to_hub(*args, **kwargs)
        finally:
            self._pushing = False

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
                    "log_history": list(self.state.log_history),
                    **{k: v for k, v in card_kwargs.items() if v is not None}}
        # So a later `model.push_to_hub(repo_id)` publishes this card too (named after that repo).
        model.model_card_data = {k: v for k, v in run_data.items() if k != "model_name"}
        merged = bool(getattr(self.args, "merge_lora_on_save", False))
        card = render_model_card(model.config, repo_id=self.hub_model_id or output_dir, lora_merged=merged,
                                 **run_data)
        card.save(os.path.join(output_dir, "README.md"))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        # A final save shares its folder with checkpoints and targets, so it cannot be renamed whole:
        # write it aside, then move it in file by file with config.json last (see publish_files).
        target, output_dir = output_dir, (os.path.join(output_dir, FINAL_STAGING_DIR) if self._final_save
                                          else output_dir)
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        model.save_pretrained(output_dir, state_dict=state_dict, merge_lora=self._merge_on_save,
                              safe_serialization=True)
        self.processing_class.save_pretrained(output_dir)
        # Arguments as JSON rather than Trainer's pickled training_args.bin: nothing here needs unpickling.
        with open(os.path.join(output_dir, "training_args.json"), "w") as handle:
            handle.write(self.args.to_json_string())
        if self._final_save:
            self._write_model_card(output_dir)
            publish_files(output_dir, target)
