"""Inference reads long texts whole, whatever the (shorter) training length."""

import copy

import numpy as np
import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from model_fixtures import LORA
from text2token import Text2TokenModel
from text2token.configuration import Text2TokenConfig

LONG = " ".join(f"word{i % 97}" for i in range(400))

def _model(real_tokenizer, positions=1024, **kwargs):
    config = LlamaConfig(vocab_size=len(real_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions,
                         tie_word_embeddings=True, pad_token_id=real_tokenizer.pad_token_id)
    return Text2TokenModel.from_backbone(LlamaForCausalLM(config), copy.deepcopy(real_tokenizer), max_length=64,
                                         lora=LORA, **kwargs).eval()

def _seen_lengths(model, monkeypatch):
    seen = []
    embed = model.embed
    monkeypatch.setattr(model, "embed", lambda ids, mask: seen.append(int(mask.sum(dim=1).max())) or embed(ids, mask))
    return seen

def test_encode_reads_a_300_token_text_whole_on_a_model_trained_at_64(real_tokenizer, monkeypatch):
    model = _model(real_tokenizer)
    text = real_tokenizer.decode(real_tokenizer(LONG, add_special_tokens=False)["input_ids"][:300])
    n_tokens = len(real_tokenizer(text)["input_ids"])
    assert 295 <= n_tokens <= 305
    seen = _seen_lengths(model, monkeypatch)
    default = model.encode([text])
    assert seen == [n_tokens], "encode must not truncate at the training length"
    at_64 = model.encode([text], max_length=64)
    assert seen[-1] == 64
    assert not np.allclose(default, at_64, atol=1e-4)
    model.explain([text], k=3)
    assert seen[-1] == n_tokens

def test_default_inference_length_is_512_or_more_capped_by_positions(real_tokenizer):
    assert _model(real_tokenizer).config.encode_length == 512
    assert _model(real_tokenizer, positions=256).config.encode_length == 256
    long_trained = Text2TokenConfig(lm_config=_model(real_tokenizer).config.lm_config, max_length=768)
    assert long_trained.encode_length == 768
    fixed = Text2TokenConfig(lm_config=long_trained.lm_config, max_length=64, inference_max_length=100)
    assert fixed.encode_length == 100
    with pytest.raises(ValueError, match="inference_max_length=0"):
        Text2TokenConfig(lm_config=long_trained.lm_config, inference_max_length=0)

def test_inference_length_survives_save_and_reload(real_tokenizer, tmp_path):
    model = _model(real_tokenizer)
    model.config.inference_max_length = 200
    model.save_pretrained(tmp_path / "m")
    reloaded = Text2TokenModel.from_pretrained(tmp_path / "m")
    assert reloaded.config.encode_length == 200 and reloaded.config.max_length == 64

def test_training_and_model_derived_targets_keep_the_training_length(real_tokenizer, monkeypatch, tmp_path):

    from text2token.targets.model_derived import encode_corpus_in_shards

    model = _model(real_tokenizer)
    seen = _seen_lengths(model, monkeypatch)
    encode_corpus_in_shards(model, [LONG, "short text"], tmp_path / "work", shard_size=8)
    assert max(seen) == 64
