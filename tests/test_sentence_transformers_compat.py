"""A folder written by `save_pretrained` loads with `SentenceTransformer(path, trust_remote_code=True)`, with
and without text2token importable, and embeds exactly as `model.encode` for every pooling/attention mode."""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from text2token import Text2TokenModel
from text2token.configuration import PROMPT_EOL
from text2token.sentence_transformers_compat import inference_length

from model_fixtures import LORA, SENTENCES, tiny_backbone

MODES = {"mean": ("mean", "causal"), "last-prompteol": ("last", "causal"), "bidirectional": ("mean", "bidirectional")}
LONG = " ".join(["A considerably longer sentence about dogs running through the park."] * 40)
TEXTS = [*SENTENCES, LONG]


def _model(real_tokenizer, pooling, attention):
    model = Text2TokenModel.from_backbone(tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id),
                                          real_tokenizer, pooling=pooling, attention=attention, max_length=48,
                                          lora=LORA)
    with torch.no_grad():  # peft starts lora_B at zero: give the adapter an effect
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    return model.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, real_tokenizer):
    """One saved folder per mode (adapter unmerged, as the trainer's checkpoints), with `encode`'s vectors."""
    root = tmp_path_factory.mktemp("st")
    folders = {}
    for name, (pooling, attention) in MODES.items():
        model = _model(real_tokenizer, pooling, attention)
        model.save_pretrained(root / name)
        folders[name] = (root / name, model.encode(TEXTS), model)
    return folders


@pytest.mark.parametrize("mode", MODES)
def test_sentence_transformer_matches_encode(saved, mode):
    folder, expected, model = saved[mode]
    st = SentenceTransformer(str(folder), trust_remote_code=True)
    got = st.encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert st.get_embedding_dimension() == model.config.lm_config.hidden_size

    # The configs sentence-transformers reads: inference length, prompts, similarity.
    assert st.max_seq_length == inference_length(model.config)
    assert json.loads((folder / "sentence_bert_config.json").read_text()) == {"max_seq_length": st.max_seq_length}
    st_config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": model.config.prompt or "", "document": model.config.prompt or ""}
    assert st_config["similarity_fn_name"] == "cosine"
    normed = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(st.similarity(got, got).numpy(), normed @ normed.T, atol=1e-5)

    if mode == "last-prompteol":
        assert st.prompts["document"] == PROMPT_EOL and st.default_prompt_name == "document"
        np.testing.assert_allclose(st.encode_query(TEXTS), expected, atol=1e-5, rtol=0)
        # The prompt really is applied: the raw text alone embeds differently.
        assert not np.allclose(st.encode(TEXTS, prompt="{text}"), expected, atol=1e-3)
        # A plain prefix goes in front of the text, inside PromptEOL.
        prefixed = st.encode(TEXTS[:2], prompt="query: ")
        wrapped = PROMPT_EOL.replace("{text}", "query: {text}")
        np.testing.assert_allclose(prefixed, st.encode(TEXTS[:2], prompt=wrapped), atol=1e-6, rtol=0)
    if mode == "bidirectional":
        causal = Text2TokenModel.from_pretrained(folder, attention="causal").encode(TEXTS)
        assert not np.allclose(got, causal, atol=1e-3), "loaded with causal attention"


def test_sentence_transformer_refuses_without_trust_and_saves_back(saved, tmp_path):
    folder, expected, _ = saved["last-prompteol"]
    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(folder))
    st = SentenceTransformer(str(folder), trust_remote_code=True)
    st.save(str(tmp_path / "again"))
    again = SentenceTransformer(str(tmp_path / "again"), trust_remote_code=True)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-5, rtol=0)
    assert Text2TokenModel.from_pretrained(tmp_path / "again").config.prompt == PROMPT_EOL


# Runs where text2token cannot be imported at all: only the code saved with the model may run.
WITHOUT_TEXT2TOKEN = textwrap.dedent("""
    import importlib.abc, sys
    import numpy as np

    class NoText2Token(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "text2token":
                raise ImportError("text2token is not installed here")

    sys.meta_path.insert(0, NoText2Token())
    from sentence_transformers import SentenceTransformer

    texts = sys.argv[-1].split("\\x1f")
    for folder, out in zip(sys.argv[1:-1:2], sys.argv[2:-1:2]):
        np.save(out, SentenceTransformer(folder, trust_remote_code=True).encode(texts))
    assert not any(m.split(".")[0] == "text2token" for m in sys.modules)
    print("ok")
""")


def test_sentence_transformer_without_text2token(saved, tmp_path):
    args = []
    for name, (folder, _, _) in saved.items():
        args += [str(folder), str(tmp_path / f"{name}.npy")]
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", WITHOUT_TEXT2TOKEN, *args, "\x1f".join(TEXTS)], cwd=tmp_path,
                            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    for name, (_, expected, _) in saved.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected, atol=1e-5, rtol=0, err_msg=name)


def test_pushed_model_loads_in_sentence_transformers(loopback_hub, real_tokenizer, tmp_path):
    model = _model(real_tokenizer, "last", "causal")
    repo_id = f"loopback/st-{uuid.uuid4().hex[:10]}"
    model.push_to_hub(repo_id)  # LoRA merged into the published weights
    model.save_pretrained(tmp_path / "local", merge_lora=True)
    expected = Text2TokenModel.from_pretrained(tmp_path / "local").encode(TEXTS)
    st = SentenceTransformer(repo_id, trust_remote_code=True)
    np.testing.assert_allclose(st.encode(TEXTS), expected, atol=1e-5, rtol=0)
