"""Damaged or mistyped inputs are named when they are read, not after hours of work: a Hub target
dataset whose metadata has `params` as a string, a corrupt weight file, a Text2Token config that lost
its model_type, a missing local corpus path (never sent to the Hub), a corpus with no content word."""

import json
import uuid
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi

from model_fixtures import SENTENCES
from text2token.corpora import load_corpus
from text2token.hub_targets import load_target_dataset, push_targets_to_hub
from text2token.modeling import Text2TokenModel
from text2token.targets import build_data_driven_targets


def _targets(tokenizer):
    return build_data_driven_targets(datasets.Dataset.from_dict({"text": SENTENCES}), tokenizer,
                                     corpus="toy", backbone="loopback/tiny")


def test_hub_targets_whose_params_is_a_string_are_refused_when_loaded(hub, real_tokenizer, tmp_path):
    repo_id = f"loopback/bad-info-{uuid.uuid4().hex[:8]}"
    push_targets_to_hub(_targets(real_tokenizer), repo_id)
    downloaded = HfApi().hf_hub_download(repo_id, "text2token_targets.json", repo_type="dataset", local_dir=tmp_path)
    info = json.loads(Path(downloaded).read_text())
    info["params"] = "uniform"
    HfApi().upload_file(path_or_fileobj=json.dumps(info).encode(), path_in_repo="text2token_targets.json",
                        repo_id=repo_id, repo_type="dataset")
    with pytest.raises(ValueError, match=rf"{repo_id}/text2token_targets.json: field params must be an object, "
                                         r"found str"):
        load_target_dataset(repo_id)


def test_a_corrupt_weight_file_is_named(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"{weights}: corrupt or truncated safetensors file"):
        Text2TokenModel.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("model_type", ["llama", None], ids=["llama", "missing"])
def test_a_text2token_config_that_lost_its_model_type_is_refused(tiny_model, tmp_path, model_type):
    from text2token.arguments import ModelArguments
    from text2token.factory import build_model

    tiny_model.save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("model_type")
    if model_type:
        config["model_type"] = model_type
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"{config_path}: a Text2Token model .* restore \"model_type\": "
                                         r"\"text2token\""):
        build_model(ModelArguments(backbone=str(tmp_path / "m")))
    with pytest.raises(ValueError, match="restore"):
        Text2TokenModel.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("source", ["corpora/x.txt.gz", "./nope", "data/corpus"])
def test_a_missing_local_corpus_is_named_and_never_sent_to_the_hub(hub, tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()  # data/corpus: its folder exists here, so it is a local path
    requests_before = len(hub.requests)
    with pytest.raises(FileNotFoundError, match=rf"corpus {source} does not exist: it looks like a local path"):
        load_corpus(source)
    assert len(hub.requests) == requests_before, "a local path was sent to the Hub"


def test_a_corpus_of_only_stopwords_and_punctuation_is_named(real_tokenizer):
    corpus = datasets.Dataset.from_dict({"text": ["the of and", "!!! ... ???", "it is what it is"]})
    with pytest.raises(ValueError, match=r"none of the 3 texts has a content token: all are stopwords or punctuation"):
        build_data_driven_targets(corpus, real_tokenizer)
