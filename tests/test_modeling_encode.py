"""`encode` in sentence-transformers' words (issue 23): a single string, normalize_embeddings, prompt,
prompt_name with `config.prompts`, similarity; the same prompts through SentenceTransformer and mteb."""

import numpy as np
import pytest
import torch
from mteb.types import PromptType

from text2token import Text2TokenModel
from text2token.evaluation.mteb_encoder import EmbedderEncoder
from text2token.evaluation.systems import Text2TokenEmbedder

from model_fixtures import SENTENCES

PROMPTS = {"query": "Given a question, retrieve passages that answer it: ", "document": ""}


def test_a_single_string_gives_one_vector(tiny_model):
    one = tiny_model.encode(SENTENCES[0])
    assert one.shape == (tiny_model.config.lm_config.hidden_size,)
    np.testing.assert_allclose(one, tiny_model.encode(SENTENCES)[0], atol=1e-6)
    assert tiny_model.encode(SENTENCES[0], convert_to_tensor=True).shape == (tiny_model.config.lm_config.hidden_size,)


def test_normalize_embeddings_is_normalize(tiny_model):
    a = tiny_model.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(a, tiny_model.encode(SENTENCES, normalize=True), atol=0)


def test_prompt_is_a_prefix_of_each_text(tiny_model):
    got = tiny_model.encode(SENTENCES, prompt="query: ")
    np.testing.assert_allclose(got, tiny_model.encode([f"query: {t}" for t in SENTENCES]), atol=1e-6)
    assert not np.allclose(got, tiny_model.encode(SENTENCES), atol=1e-4)


def test_prompt_name_reads_config_prompts_saved_with_the_model(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="prompt_name='query' is not in config.prompts"):
        tiny_model.encode(SENTENCES, prompt_name="query")
    tiny_model.config.prompts = PROMPTS
    tiny_model.save_pretrained(tmp_path / "m")
    loaded = Text2TokenModel.from_pretrained(tmp_path / "m")
    assert loaded.config.prompts == PROMPTS
    np.testing.assert_allclose(loaded.encode(SENTENCES, prompt_name="query"),
                               loaded.encode(SENTENCES, prompt=PROMPTS["query"]), atol=1e-6)
    # Instructions are off unless asked for: a plain call encodes the bare text.
    np.testing.assert_allclose(loaded.encode(SENTENCES), tiny_model.encode(SENTENCES), atol=1e-5)
    np.testing.assert_allclose(loaded.encode(SENTENCES, prompt_name="document"), loaded.encode(SENTENCES), atol=1e-6)
    with pytest.raises(ValueError, match="prompts="):
        Text2TokenModel.config_class(prompts=["not", "a", "mapping"])


def test_similarity_is_cosine(tiny_model):
    emb = tiny_model.encode(SENTENCES)
    sim = tiny_model.similarity(emb, emb)
    unit = emb / np.linalg.norm(emb, axis=-1, keepdims=True)
    np.testing.assert_allclose(sim.numpy(), unit @ unit.T, atol=1e-5)
    assert tiny_model.similarity(emb[0], emb).shape == (1, len(SENTENCES))


def test_sentence_transformers_maps_the_same_prompts(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    tiny_model.config.prompts = PROMPTS
    tiny_model.save_pretrained(tmp_path / "m")
    st = SentenceTransformer(str(tmp_path / "m"), trust_remote_code=True)
    assert st.default_prompt_name is None  # instructions off by default
    np.testing.assert_allclose(st.encode(SENTENCES), tiny_model.encode(SENTENCES), atol=1e-5)
    np.testing.assert_allclose(st.encode_query(SENTENCES), tiny_model.encode(SENTENCES, prompt_name="query"),
                               atol=1e-5)
    np.testing.assert_allclose(st.encode(SENTENCES, prompt="query: "), tiny_model.encode(SENTENCES, prompt="query: "),
                               atol=1e-5)


def test_mteb_wrapper_maps_prompt_type_to_prompts(tiny_model, tmp_path):
    tiny_model.config.prompts = PROMPTS
    encoder = EmbedderEncoder(Text2TokenEmbedder(tiny_model, "tiny"), cache_dir=tmp_path / "cache",
                              show_progress_bar=False)
    assert encoder.prompt_name(PromptType.query) == "query" and encoder.prompt_name(None) is None
    queries = encoder.encode_texts(SENTENCES, prompt_name=encoder.prompt_name(PromptType.query))
    documents = encoder.encode_texts(SENTENCES, prompt_name=encoder.prompt_name(PromptType.document))
    np.testing.assert_allclose(queries, tiny_model.encode(SENTENCES, prompt_name="query"), atol=1e-5)
    np.testing.assert_allclose(documents, tiny_model.encode(SENTENCES), atol=1e-5)
    assert not np.allclose(queries, documents, atol=1e-4), "a query and a document are cached apart"


def test_instructions_are_recorded_in_card_and_model_meta(tiny_model, tmp_path):
    from huggingface_hub import ModelCard

    from text2token.evaluation import model_meta
    from text2token.hub import render_model_card

    tiny_model.config.prompts = PROMPTS
    tiny_model.merge_lora()
    tiny_model.save_pretrained(tmp_path / "m")
    card = render_model_card(tiny_model, base_model="owner/backbone", license="mit", language="en")
    assert f"`query`: `{PROMPTS['query']}`" in ModelCard(str(card)).text
    assert model_meta(tmp_path / "m").use_instructions is True


def test_sentence_transformers_refuses_a_backend_it_would_ignore(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    tiny_model.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="backend='onnx'"):
        SentenceTransformer(str(tmp_path / "m"), trust_remote_code=True, backend="onnx")
