"""`export_sentence_transformers` writes a plain sentence-transformers folder (no remote code) that embeds as
`model.encode`, and refuses settings it cannot express."""

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from text2token import Text2TokenModel
from text2token.export import ExportError, export_sentence_transformers

from model_fixtures import LORA, SENTENCES, tiny_backbone

TEXTS = [*SENTENCES, " ".join(["Dogs running through the park on a sunny afternoon."] * 40)]


@pytest.mark.parametrize("normalize", [False, True])
def test_export_embeds_like_encode_without_remote_code(tiny_model, tmp_path, normalize):
    expected = tiny_model.encode(TEXTS, normalize=normalize)
    tiny_model.save_pretrained(tmp_path / "t2t")
    out = export_sentence_transformers(tmp_path / "t2t", tmp_path / "export", normalize=normalize)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "auto_map" not in config  # its own architecture
    assert not list(out.glob("*.py")), "no remote code in an export"
    st = SentenceTransformer(str(out))  # no trust_remote_code
    assert [type(m).__name__ for m in st] == ["Transformer", "Pooling", *(["Normalize"] if normalize else [])]
    np.testing.assert_allclose(st.encode(TEXTS), expected, atol=1e-5, rtol=0)
    assert st.max_seq_length == tiny_model.config.encode_length


@pytest.mark.parametrize("setting", ["last", "bidirectional"])
def test_export_refuses_what_it_cannot_express(real_tokenizer, tmp_path, setting):
    kwargs = {"pooling": "last"} if setting == "last" else {"attention": "bidirectional"}
    model = Text2TokenModel.from_backbone(tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id),
                                          real_tokenizer, lora=LORA, **kwargs)
    match = "prompt=" if setting == "last" else "attention='bidirectional'"
    with pytest.raises(ExportError, match=match):
        export_sentence_transformers(model, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_export_reads_the_encode_length_of_a_long_context_backbone(real_tokenizer, tmp_path):
    """A backbone with more positions (2048) than the inference length (512), and a text longer than 512
    tokens: the export must truncate where `encode` does (it read up to 8192 tokens before)."""
    model = Text2TokenModel.from_backbone(
        tiny_backbone(len(real_tokenizer), real_tokenizer.pad_token_id, max_positions=2048), real_tokenizer,
        max_length=48, lora=LORA)
    long_text = " ".join(["Dogs running through the park on a sunny afternoon, chasing a red ball."] * 60)
    assert len(real_tokenizer(long_text).input_ids) > 600 and model.config.encode_length == 512
    texts = [long_text, *SENTENCES]
    expected = model.encode(texts)
    model.save_pretrained(tmp_path / "t2t")
    out = export_sentence_transformers(tmp_path / "t2t", tmp_path / "export")
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 512
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    st = SentenceTransformer(str(out))
    assert st.max_seq_length == 512
    np.testing.assert_allclose(st.encode(texts), expected, atol=1e-5, rtol=0)


def test_export_carries_the_model_card(tiny_model, tmp_path):
    from huggingface_hub import ModelCard

    from text2token.hub import render_model_card

    tiny_model.save_pretrained(tmp_path / "t2t")
    render_model_card(tiny_model, base_model="owner/backbone", license="apache-2.0",
                      language="en", eval_results={"OfflineLeeSTS": 61.5}).save(str(tmp_path / "t2t" / "README.md"))
    out = export_sentence_transformers(tmp_path / "t2t", tmp_path / "export")
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "apache-2.0" and card.data.base_model == "owner/backbone"
    assert card.data.eval_results[0].metric_value == 61.5  # the source's scores travel with it
    assert "trust_remote_code" not in card.text.split("## Usage")[1].split("## Framework")[0]
    assert 'SentenceTransformer("' in card.text


def test_export_refuses_a_non_empty_folder(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "t2t")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="export"):
        export_sentence_transformers(tmp_path / "t2t", tmp_path / "export")
    assert (tmp_path / "export" / "keep.txt").read_text() == "mine"
