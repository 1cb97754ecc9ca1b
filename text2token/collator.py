"""Batch texts and their sparse targets for the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .configuration import Text2TokenConfig
from .targets.schema import TARGET_IDS, TARGET_WEIGHTS, TEXT
from .tokenization import tokenize_texts


@dataclass
class Text2TokenCollator:
    """Tokenizes `text` and pads `target_ids` / `target_weights` to the batch's longest target.

    Padding slots get id 0 and weight 0, which the loss ignores; q is never made dense.
    """

    tokenizer: PreTrainedTokenizerBase
    max_length: int | None = None  # None: the training length's default, Text2TokenConfig.max_length
    prompt: str | None = None
    text_column: str = TEXT

    def __post_init__(self):
        if self.max_length is None:
            self.max_length = Text2TokenConfig.max_length

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = dict(tokenize_texts(self.tokenizer, [f[self.text_column] for f in features],
                                    max_length=self.max_length, prompt=self.prompt))
        if TARGET_IDS not in features[0]:
            return batch
        width = max(len(f[TARGET_IDS]) for f in features)
        ids = torch.zeros(len(features), width, dtype=torch.long)
        weights = torch.zeros(len(features), width, dtype=torch.float32)
        for row, feature in enumerate(features):
            n = len(feature[TARGET_IDS])
            try:
                ids[row, :n] = torch.as_tensor(feature[TARGET_IDS], dtype=torch.long)
                weights[row, :n] = torch.as_tensor(feature[TARGET_WEIGHTS], dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError) as exc:  # None, strings, ragged rows
                text = str(feature.get(self.text_column, ""))[:60]
                raise ValueError(f"batch row {row} ({text!r}): {TARGET_IDS} and {TARGET_WEIGHTS} must be equally long "
                                 f"lists of numbers ({exc}); check targets with "
                                 f"text2token.targets.schema.validate_targets") from None
        batch[TARGET_IDS] = ids
        batch[TARGET_WEIGHTS] = weights
        return batch
