import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

import text2token
from text2token import Text2TokenConfig, Text2TokenModel

from model_fixtures import SENTENCES


def _encode_with_padding_side(model, side, texts=SENTENCES):
    model.tokenizer.padding_side = side
    return model.encode(texts)


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_embeddings_do_not_depend_on_padding_side(tiny_model, pooling, attention):
    tiny_model.config.pooling = pooling
    tiny_model.config.prompt = text2token.PROMPT_EOL if pooling == "last" else None
    text2token.attention.set_attention_mode(tiny_model.backbone, attention)
    left = _encode_with_padding_side(tiny_model, "left")
    right = _encode_with_padding_side(tiny_model, "right")
    np.testing.assert_allclose(left, right, atol=1e-5)


def test_batched_encoding_equals_one_at_a_time(tiny_model):
    batched = tiny_model.encode(SENTENCES, batch_size=3)
    single = np.concatenate([tiny_model.encode([s]) for s in SENTENCES])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_bidirectional_attention_lets_early_tokens_see_later_ones(tiny_model):
    ids = torch.tensor([[10, 20, 30, 40]])
    changed = torch.tensor([[10, 20, 30, 99]])
    mask = torch.ones_like(ids)
    decoder = tiny_model.backbone.get_decoder()

    def first_token_state():
        return [decoder(input_ids=x, attention_mask=mask).last_hidden_state[0, 0] for x in (ids, changed)]

    with torch.no_grad():
        a, b = first_token_state()
        assert torch.allclose(a, b), "causal attention must not let token 0 see token 3"
        text2token.attention.set_attention_mode(tiny_model.backbone, "bidirectional")
        a, b = first_token_state()
        assert not torch.allclose(a, b), "bidirectional attention must let token 0 see token 3"


def test_forward_gives_pooled_embeddings_and_vocab_logits_only(tiny_model):
    calls = []
    tiny_model.lm_head.register_forward_hook(lambda *args: calls.append(1))
    inputs = tiny_model.tokenize(SENTENCES[:2])
    out = tiny_model(**inputs)
    assert out.embeddings.shape == (2, tiny_model.config.lm_config.hidden_size)
    assert out.logits.shape == (2, len(tiny_model.tokenizer)) and out.logits.dtype == torch.float32
    assert calls == [], "the LM head module ran over the sequence: [batch, seq, vocab] logits were built"
    assert set(out.keys()) == {"embeddings", "logits"}  # no loss: the objectives are text2token.losses


def test_encode_normalize_and_tensor_output(tiny_model):
    out = tiny_model.encode(SENTENCES, normalize=True, convert_to_tensor=True)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(len(SENTENCES)))


def test_encode_rejects_non_strings(tiny_model):
    # A single string is sentence-transformers' one-vector call (issue 23, tests/test_modeling_encode.py).
    with pytest.raises(TypeError, match="single str"):
        tiny_model.explain("just one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tiny_model.encode(["fine", 3])


def test_explain_returns_the_top_k_tokens_of_the_embedding(tiny_model):
    explained = tiny_model.explain(SENTENCES[:2], k=5)
    # Recomputed independently from the embedding: softmax(W h) in numpy, ranked by argsort.
    head = tiny_model.lm_head.weight.detach().float().numpy()
    for tokens, vector in zip(explained, tiny_model.encode(SENTENCES[:2])):
        logits = head @ vector
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = np.argsort(-probs)[:5]
        assert [t for t, _ in tokens] == [tiny_model.tokenizer.decode([int(i)]) for i in best]
        np.testing.assert_allclose([p for _, p in tokens], probs[best], rtol=1e-4)


def test_a_folder_with_only_pickle_weights_is_refused_by_default(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    torch.save(tiny_model.state_dict(), tmp_path / "pytorch_model.bin")  # the same weights, pickled
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(OSError, match="model.safetensors"):
        Text2TokenModel.from_pretrained(tmp_path)
    # Only an explicit opt-out reads the pickle, so the refusal above is about the format alone.
    reloaded = Text2TokenModel.from_pretrained(tmp_path, use_safetensors=False)
    np.testing.assert_allclose(reloaded.encode(SENTENCES[:1]), tiny_model.encode(SENTENCES[:1]), atol=1e-5)


@pytest.mark.parametrize("merge", [False, True])
def test_save_and_reload_gives_identical_embeddings(tiny_model, tmp_path, merge):
    expected = tiny_model.encode(SENTENCES)
    tiny_model.save_pretrained(tmp_path, merge_lora=merge)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")), "weights must be safetensors only"
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(reloaded, Text2TokenModel)
    assert (reloaded.config.lora is None) == merge
    assert text2token.adapters.has_lora(reloaded.backbone) != merge
    np.testing.assert_allclose(reloaded.encode(SENTENCES), expected, atol=1e-5)
    assert tiny_model.config.lora is not None, "saving merged must leave the live model unmerged"


def test_merge_lora_keeps_embeddings_and_removes_adapter(tiny_model):
    before = tiny_model.encode(SENTENCES)
    tiny_model.merge_lora()
    assert not text2token.adapters.has_lora(tiny_model.backbone) and tiny_model.config.lora is None
    np.testing.assert_allclose(tiny_model.encode(SENTENCES), before, atol=1e-5)
    tiny_model.add_lora()  # stage 2: a fresh adapter on the merged weights, paper defaults
    assert tiny_model.config.lora["r"] == 16
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        tiny_model.add_lora()


def test_lora_targets_that_match_nothing_are_refused(tiny_model):
    tiny_model.merge_lora()
    with pytest.raises(ValueError, match="nonexistent_proj"):
        tiny_model.add_lora({"r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": ["nonexistent_proj"]})


def test_auto_classes_know_text2token():
    config = AutoConfig.for_model("text2token")
    assert isinstance(config, Text2TokenConfig)


@pytest.mark.parametrize("bad, message", [
    ({"pooling": "max"}, "pooling='max'"),
    ({"attention": "sideways"}, "attention='sideways'"),
    ({"prompt": "no slot here"}, "no '{text}' slot"),
    ({"max_length": 0}, "max_length=0"),
])
def test_config_rejects_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        Text2TokenConfig(**bad)


def test_last_pooling_defaults_to_prompt_eol():
    assert Text2TokenConfig(pooling="last").prompt == text2token.PROMPT_EOL


def test_prompt_survives_truncation(tiny_model):
    tiny_model.config.pooling, tiny_model.config.prompt = "last", text2token.PROMPT_EOL
    inputs = tiny_model.tokenize(["word " * 200], max_length=24)
    assert inputs["input_ids"].shape[1] <= 24
    decoded = tiny_model.tokenizer.decode(inputs["input_ids"][0])
    assert decoded.endswith('means in one word:"')
