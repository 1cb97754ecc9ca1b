"""mteb's view of a saved Text2Token model: ModelMeta fields, get_model-style loading, results layout."""

import json

import mteb
import numpy as np
import pytest
from huggingface_hub import ModelCard, ModelCardData
from mteb.models import ModelMeta
from mteb.results import TaskResult
from safetensors.torch import load_file

from text2token.digests import weights_digest
from text2token.evaluation import model_meta
from text2token.evaluation.mteb_meta import register

from model_fixtures import SENTENCES, load_recipe_script


@pytest.fixture
def saved(tiny_model, tmp_path):
    tiny_model.merge_lora()
    folder = tmp_path / "runs" / "stage2"
    tiny_model.save_pretrained(folder)
    card = ModelCard.from_template(ModelCardData(license="apache-2.0", base_model="HuggingFaceTB/SmolLM2-135M",
                                                 language="en", datasets=["org/wiki-targets"]))
    card.save(folder / "README.md")
    return folder, tiny_model


def test_model_meta_reads_the_folder(saved):
    folder, model = saved
    meta = model_meta(folder)
    assert isinstance(meta, ModelMeta)
    assert meta.name == "text2token-eval/runs-stage2" and meta.revision == weights_digest(folder)
    assert meta.embed_dim == model.config.lm_config.hidden_size
    assert meta.max_tokens == model.config.encode_length
    stored = load_file(folder / "model.safetensors")
    assert meta.n_parameters == sum(t.numel() for t in stored.values())
    assert meta.n_embedding_parameters == model.config.lm_config.vocab_size * model.config.lm_config.hidden_size
    assert meta.license == "apache-2.0" and meta.adapted_from == "HuggingFaceTB/SmolLM2-135M"
    assert meta.languages == ["eng-Latn"] and meta.open_weights is True
    assert meta.public_training_data == "https://huggingface.co/datasets/org/wiki-targets"
    # The run's corpora (issue 23: from the card and the run record; no mteb task's split).
    assert meta.training_datasets == {"org/wiki-targets"} and meta.similarity_fn_name.value == "cosine"
    assert {"PyTorch", "Sentence Transformers"} <= set(meta.framework)
    assert meta.use_instructions is False  # mean pooling: no prompt around the text
    assert "source" not in json.dumps(meta.to_dict(), default=str), "no local path in model_meta.json"


def test_model_meta_fills_what_mtebs_llm2vec_entries_fill(saved):
    """release date, license, reference, public training code, citation: none empty (issue 23)."""
    import datetime

    folder, _ = saved
    (folder / "training_complete.json").write_text(json.dumps({"recipe": {"data": {"corpus": "wordnet-glosses"}}}))
    meta = model_meta(folder)
    llm2vec = mteb.get_model_meta("McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp-unsup-simcse")
    for field in ("release_date", "license", "reference", "public_training_code", "citation"):
        assert getattr(llm2vec, field), field  # what mteb's own entry fills...
        assert getattr(meta, field), f"{field} is empty"  # ...ours fills too
    assert meta.release_date == datetime.datetime.now(datetime.timezone.utc).date().isoformat()  # saved today
    assert meta.reference == "https://arxiv.org/abs/2510.10224"  # a local folder: the method's paper
    assert meta.public_training_code.startswith("https://")
    assert "eprint        = {2510.10224}" in meta.citation and "@software{text2token" in meta.citation
    assert meta.adapted_from == "HuggingFaceTB/SmolLM2-135M"
    assert meta.training_datasets == {"org/wiki-targets", "wordnet-glosses"}  # card + run record
    assert meta.use_instructions is False
    assert model_meta(folder, training_datasets=set()).training_datasets == set()


def test_model_meta_options_and_refusals(saved, tmp_path):
    folder, _ = saved
    meta = model_meta(folder, name="me/my-model", max_length=64, license="mit")
    assert (meta.name, meta.max_tokens, meta.license) == ("me/my-model", 64, "mit")
    assert model_meta(folder, license="other").license is None, "a license mteb does not list is left out"
    with pytest.raises(ValueError, match="organization/model"):
        model_meta(folder, name="bare-name")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        model_meta(tmp_path / "empty")


def test_get_model_loads_an_encoder_that_encodes_like_the_model(saved):
    folder, model = saved
    meta = register(model_meta(folder, name="me/tiny-t2t"))
    encoder = mteb.get_model("me/tiny-t2t")
    assert encoder.mteb_model_meta.name == "me/tiny-t2t" and encoder.mteb_model_meta.revision == meta.revision
    got = encoder.encode_texts(SENTENCES)
    want = model.encode(SENTENCES, max_length=int(meta.max_tokens))  # mteb stores a float
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_evaluate_writes_the_results_repository_layout(saved, tmp_path):
    folder, _ = saved
    evaluate = load_recipe_script("evaluate")
    out = tmp_path / "eval"
    tasks = ["OfflineLeeSTS", "OfflineKjvWebBitextMining"]
    table = evaluate.main(["--model", str(folder), "--label", "tiny", "--mteb_name", "me/tiny-t2t", "--quick", "6",
                           "--tasks", *tasks, "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache")])
    revision_dir = out / "mteb" / "results" / "me__tiny-t2t" / weights_digest(folder)
    for task in tasks:
        result = TaskResult.from_disk(revision_dir / f"{task}.json")
        assert result.task_name == task
        assert 100 * result.get_score() == pytest.approx(table.loc["tiny", task], abs=1e-3)  # stored rounded
    stored = json.loads((revision_dir / "model_meta.json").read_text())
    assert stored["name"] == "me/tiny-t2t" and stored["loader"] == "load_encoder"
    reread = ModelMeta.model_validate_json_resolved((revision_dir / "model_meta.json").read_text())
    assert reread.revision == weights_digest(folder) and reread.embed_dim == 32
