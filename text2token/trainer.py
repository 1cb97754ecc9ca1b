"""`Text2TokenTrainer`: a `Trainer` that only orchestrates; the model computes its own loss."""

from __future__ import annotations

import logging
import os

from transformers import Trainer

from .collator import Text2TokenCollator
from .targets.schema import check_tokenizer, read_info

logger = logging.getLogger(__name__)


class Text2TokenTrainer(Trainer):
    """Trains a `Text2TokenModel` on a dataset with `text`, `target_ids` and `target_weights`.

    - The collator (tokenize + pad sparse targets) is built from the model's own settings.
    - Targets built with another tokenizer are refused before any step runs.
    - Checkpoints keep the LoRA adapter unmerged (so they resume); the final `save_model` merges it
      when `args.merge_lora_on_save` is true (the default of `Text2TokenTrainingArguments`).
    """

    def __init__(self, model=None, args=None, data_collator=None, train_dataset=None, eval_dataset=None,
                 processing_class=None, **kwargs):
        processing_class = processing_class or model.tokenizer
        for dataset in (train_dataset, eval_dataset):
            if dataset is not None and hasattr(dataset, "info"):
                check_tokenizer(read_info(dataset), processing_class)
        if data_collator is None:
            data_collator = Text2TokenCollator(processing_class, max_length=model.config.max_length,
                                               prompt=model.config.prompt)
        if args is not None and args.remove_unused_columns:
            # The collator needs the raw `text` column, which `forward` does not take.
            logger.info("Setting remove_unused_columns=False: the collator tokenizes the `text` column itself")
            args.remove_unused_columns = False
        self._merge_on_save = False
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, return_logits=return_outputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # `_internal_call` is how Trainer marks checkpoint saves; only a user-facing save merges.
        self._merge_on_save = bool(getattr(self.args, "merge_lora_on_save", False)) and not _internal_call
        try:
            super().save_model(output_dir, _internal_call)
        finally:
            self._merge_on_save = False

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        model.save_pretrained(output_dir, state_dict=state_dict, merge_lora=self._merge_on_save,
                              safe_serialization=True)
        self.processing_class.save_pretrained(output_dir)
        # Arguments as JSON rather than Trainer's pickled training_args.bin: nothing here needs unpickling.
        with open(os.path.join(output_dir, "training_args.json"), "w") as handle:
            handle.write(self.args.to_json_string())
