"""Train a Text2Token model: `accelerate launch recipes/train.py --config recipes/<model>/<stage>.yaml [--key value ...]`."""

from __future__ import annotations

import logging
import sys

import transformers
from transformers.trainer_utils import get_last_checkpoint

from text2token.arguments import DataArguments, ModelArguments, Text2TokenTrainingArguments, parse_recipe_args
from text2token.factory import build_model, prepare_targets
from text2token.trainer import Text2TokenTrainer

logger = logging.getLogger("text2token.train")


def main(argv: list[str] | None = None) -> str:
    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, DataArguments, Text2TokenTrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO,
                        stream=sys.stdout)
    transformers.set_seed(training_args.seed)

    model = build_model(model_args)
    with training_args.main_process_first(desc="building targets"):
        train_dataset = prepare_targets(model, data_args, training_args.output_dir, backbone_name=model_args.backbone)

    trainer = Text2TokenTrainer(model=model, args=training_args, train_dataset=train_dataset)
    checkpoint = get_last_checkpoint(training_args.output_dir) if training_args.resume_from_checkpoint is None \
        else training_args.resume_from_checkpoint
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    logger.info("Saved the trained model to %s", training_args.output_dir)
    return training_args.output_dir


if __name__ == "__main__":
    main()
