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
