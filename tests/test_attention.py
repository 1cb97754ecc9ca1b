"""Bidirectional attention proves itself at construction: the self-check passes for every attention
implementation here, catches a causal backbone, and raises when transformers' mask builder ignores the flag."""

import pytest
import torch
import transformers
from transformers.models.llama import modeling_llama

from text2token import Text2TokenModel
from text2token.attention import BidirectionalAttentionError, check_bidirectional, set_attention_mode

from model_fixtures import SENTENCES, tiny_backbone

IMPLEMENTATIONS = ["eager", "sdpa"]


def _backbone(real_tokenizer, impl):
    backbone = tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id)
    backbone.set_attn_implementation(impl)
    assert backbone.config._attn_implementation == impl
    return backbone


@pytest.fixture
def flag_ignored(monkeypatch):
    """transformers as a release whose mask builder no longer reads `config.is_causal`."""
    original = modeling_llama.create_causal_mask

    def causal_whatever_the_flag(config, *args, **kwargs):
        causal = type(config).from_dict(config.to_dict())
        causal.is_causal = True
        causal._attn_implementation = config._attn_implementation
        return original(causal, *args, **kwargs)

    monkeypatch.setattr(modeling_llama, "create_causal_mask", causal_whatever_the_flag)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_self_check_passes_in_padded_batches_and_catches_causal(real_tokenizer, impl):
    model = Text2TokenModel.from_backbone(_backbone(real_tokenizer, impl), real_tokenizer, attention="bidirectional")
    assert check_bidirectional(model.backbone) > 1e-2
    # The probe itself can fail: a causal backbone is caught.
    set_attention_mode(model.backbone, "causal")
    with pytest.raises(BidirectionalAttentionError):
        check_bidirectional(model.backbone)

    # End to end, in a padded encode batch: the first sentence's embedding depends on its later tokens.
    set_attention_mode(model.backbone, "bidirectional")
    model.tokenizer.padding_side = "right"
    texts = [SENTENCES[0], SENTENCES[0].replace("mat", "sofa"), SENTENCES[1]]
    ids = model.tokenize(texts)
    with torch.no_grad():
        hidden = model.backbone.get_decoder()(**ids, use_cache=False).last_hidden_state
    assert ids["attention_mask"][0].sum() < ids["attention_mask"].shape[1], "batch must be padded"
    assert not torch.allclose(hidden[0, 1], hidden[1, 1], atol=1e-4), "token 1 did not see the changed word"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_self_check_raises_when_the_mask_builder_ignores_the_flag(real_tokenizer, flag_ignored, impl, tmp_path):
    backbone = _backbone(real_tokenizer, impl)
    with pytest.raises(BidirectionalAttentionError, match=rf"transformers {transformers.__version__}.*{impl}"):
        Text2TokenModel.from_backbone(backbone, real_tokenizer, attention="bidirectional")
    # Causal models are unaffected, and a saved bidirectional model is checked once its weights load.
    model = Text2TokenModel.from_backbone(backbone, real_tokenizer, attention="causal")
    model.config.attention = "bidirectional"
    model.save_pretrained(tmp_path)
    with pytest.raises(BidirectionalAttentionError, match="padded batch"):
        Text2TokenModel.from_pretrained(tmp_path, attn_implementation=impl)


def test_self_check_runs_one_layer_and_restores_the_model(real_tokenizer):
    model = Text2TokenModel.from_backbone(_backbone(real_tokenizer, "sdpa"), real_tokenizer, attention="bidirectional")
    decoder = model.backbone.get_decoder()
    layers = decoder.layers
    calls = []
    for i, layer in enumerate(layers):
        layer.register_forward_hook(lambda *args, i=i: calls.append(i))
    model.train()
    check_bidirectional(model.backbone)
    assert calls and set(calls) == {0}, calls
    assert decoder.layers is layers and all(m.training for m in model.modules())
