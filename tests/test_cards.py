"""Model and dataset cards carry the YAML the Hub and sentence-transformers users expect, as parsed back by
huggingface_hub's own card classes."""

import datasets
from huggingface_hub import DatasetCard, ModelCard

from text2token.hub import render_model_card
from text2token.hub_targets import render_dataset_card
from text2token.targets import build_data_driven_targets, read_info

from model_fixtures import SENTENCES

SCORES = {"STS12": 0.61, "Banking77Classification": {"accuracy": 0.7, "f1": 0.65}, "note": "not a score"}


def _info(tokenizer, corpus):
    data = datasets.Dataset.from_dict({"text": SENTENCES * 3})
    return read_info(build_data_driven_targets(data, tokenizer, corpus=corpus, backbone="loopback/tiny-llama"))


def test_model_card_yaml(tiny_model, tiny_backbone_dir, real_tokenizer):
    (tiny_backbone_dir / "README.md").write_text("---\nlicense: llama3\nlanguage:\n- en\n- de\n---\n# backbone\n")
    info = _info(real_tokenizer, "owner/wiki-corpus")
    card = render_model_card(tiny_model, repo_id="me/tiny-t2t", base_model=str(tiny_backbone_dir), targets=info,
                             dataset_ids="me/tiny-targets", eval_results=SCORES)
    parsed = ModelCard(str(card))  # what the Hub reads: the YAML header only
    data = parsed.data
    assert data.library_name == "sentence-transformers" and data.pipeline_tag == "sentence-similarity"
    assert {"text2token", "sentence-transformers", "feature-extraction", "mteb"} <= set(data.tags)
    assert data.license == "llama3" and data.language == ["en", "de"]  # the backbone's
    assert data.datasets == ["me/tiny-targets", "owner/wiki-corpus"]

    results = {(r.dataset_name, r.metric_type): r for r in data.eval_results}
    assert set(results) == {("STS12", "main_score"), ("Banking77Classification", "accuracy"),
                            ("Banking77Classification", "f1")}
    assert results[("STS12", "main_score")].metric_value == 0.61
    assert results[("Banking77Classification", "f1")].metric_value == 0.65
    assert data.model_name == "tiny-t2t"
    raw = data.to_dict()["model-index"][0]
    assert raw["name"] == "tiny-t2t" and raw["results"][0]["task"]["type"] == "feature-extraction"
    assert 'SentenceTransformer("me/tiny-t2t", trust_remote_code=True)' in parsed.text


def test_model_card_yaml_defaults_and_hub_base_model(tiny_model):
    card = ModelCard(str(render_model_card(tiny_model, repo_id="me/x", base_model="owner/backbone",
                                           license="apache-2.0", language="fr")))
    assert card.data.base_model == "owner/backbone"
    assert card.data.license == "apache-2.0" and card.data.language == "fr"
    assert card.data.eval_results is None and card.data.datasets is None


def test_dataset_card_yaml(real_tokenizer):
    info = _info(real_tokenizer, "owner/wiki-corpus")
    card = DatasetCard(str(render_dataset_card(info, "me/tiny-targets", license="cc-by-sa-4.0")))
    data = card.data
    assert data.task_categories == ["feature-extraction"]
    assert data.size_categories == ["n<1K"] and info.num_rows < 1000
    assert data.source_datasets == ["owner/wiki-corpus"]
    assert data.license == "cc-by-sa-4.0"
    assert data.to_dict()["configs"] == [{"config_name": "default",
                                          "data_files": [{"split": "train", "path": "data/train-*"}]}]
    # A local corpus is not a Hub dataset: the targets are the original source.
    local = DatasetCard(str(render_dataset_card(_info(real_tokenizer, "/tmp/corpus.txt"), "me/t"))).data
    assert local.source_datasets == ["original"] and local.license == "other"
