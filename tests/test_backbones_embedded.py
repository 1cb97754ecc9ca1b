"""Integration: the real embedded default (SmolLM2-135M-Instruct from its GGUF) converts, trains a
few steps and reloads. Marked slow: deselect with `-m "not slow"`."""

import json

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModel

from text2token import Text2TokenModel
from text2token.arguments import Text2TokenTrainingArguments
from text2token.backbones import convert_embedded_default
from text2token.targets import build_data_driven_targets, tokenizer_fingerprint
from text2token.trainer import Text2TokenTrainer

pytestmark = pytest.mark.slow


def test_embedded_default_converts_trains_and_reloads(tmp_path, real_tokenizer):
    folder = convert_embedded_default()
    assert (folder / "model.safetensors").is_file()
    assert json.loads((folder / "config.json").read_text()).get("quantization_config") is None
    assert convert_embedded_default() == folder, "a second call reuses the converted folder"

    model = Text2TokenModel.from_backbone(str(folder), max_length=32, lora={"r": 8, "lora_alpha": 16,
                                          "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]})
    assert tokenizer_fingerprint(model.tokenizer) == tokenizer_fingerprint(real_tokenizer)
    corpus = datasets.Dataset.from_dict({"text": [
        "a domesticated carnivorous mammal that typically has a long snout",
        "the capital and largest city of France",
        "a vessel for travel on water",
        "an instrument for measuring time",
    ] * 2})
    targets = build_data_driven_targets(corpus, model.tokenizer)
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=4,
                                       learning_rate=2e-4, logging_steps=1, save_strategy="no", report_to="none",
                                       use_cpu=True)
    trainer = Text2TokenTrainer(model=model, args=args, train_dataset=targets)
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(np.isfinite(losses)) and 3.0 < losses[0] < 12.0
    trainer.save_model()

    reloaded = AutoModel.from_pretrained(tmp_path / "out")
    texts = ["a small boat", "the city of Paris"]
    embeddings = reloaded.encode(texts)
    assert embeddings.shape == (2, 576) and np.isfinite(embeddings).all()
    np.testing.assert_allclose(embeddings, model.encode(texts), atol=1e-4)
    assert reloaded.dtype == torch.float32
