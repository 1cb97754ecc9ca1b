"""Shared model fixtures: a tiny random Llama with the embedded default's real vocabulary.

The tokenizer comes from the GGUF file of the embedded default (no download, no conversion); the
backbone is a 2-layer random Llama of that vocabulary, built once per session and copied per test.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from text2token import Text2TokenModel
from text2token.backbones import embedded_gguf_path

LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


@pytest.fixture(scope="session")
def real_tokenizer():
    gguf = embedded_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_backbone(vocab_size: int, pad_token_id: int | None = None, seed: int = 0,
                  max_positions: int = 256) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                         tie_word_embeddings=True, pad_token_id=pad_token_id)
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def _tiny_model_base(real_tokenizer):
    model = Text2TokenModel.from_backbone(tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id),
                                          real_tokenizer, max_length=48, lora=LORA)
    # peft starts lora_B at zero; give it weight so adapter effects (merge, save) are visible.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    return model.eval()


@pytest.fixture
def tiny_model(_tiny_model_base, real_tokenizer):
    """A fresh copy per test, so tests can train, merge or mutate it freely."""
    model = copy.deepcopy(_tiny_model_base)
    model.tokenizer = copy.deepcopy(real_tokenizer)
    return model


SENTENCES = [
    "The cat sat on the mat.",
    "A considerably longer sentence about dogs running through the park on a sunny afternoon.",
    "hi",
    "Photosynthesis converts light energy into chemical energy.",
]


def save_tiny_backbone(folder: Path, tokenizer) -> Path:
    """A plain causal-LM folder (tiny random Llama + the real tokenizer), as users pass `--backbone`."""
    tiny_backbone(len(tokenizer), tokenizer.pad_token_id).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_backbone_dir(tmp_path, real_tokenizer):
    return save_tiny_backbone(tmp_path / "backbone", real_tokenizer)


def load_recipe_script(name: str):
    """The module behind `recipes/<name>.py` (`text2token <name>`): the scripts are thin wrappers over
    `text2token.commands`, whose functions the tests call in-process."""
    return importlib.import_module(f"text2token.commands.{name}")
