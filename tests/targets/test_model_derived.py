import datasets
import numpy as np
import pytest
import torch

from text2token.targets import read_info
from text2token.targets.model_derived import build_model_derived_targets, encode_corpus_in_shards

from model_fixtures import SENTENCES

TEXTS = SENTENCES + ["Rivers carry water to the sea.", "   ", "Mountains rise above the clouds."]


@pytest.fixture
def frozen_model(tiny_model):
    tiny_model.merge_lora()
    return tiny_model


def _corpus():
    return datasets.Dataset.from_dict({"text": TEXTS})


def test_targets_follow_the_formula(frozen_model, tmp_path):
    targets = build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path, top_k=5, temperature=0.05)
    kept = [t for t in TEXTS if t.strip()]
    assert targets["text"] == kept and read_info(targets).dropped == {"empty_text": 1}
    with torch.no_grad():
        h0 = torch.as_tensor(frozen_model.encode(kept))
        p0 = frozen_model.project(h0).softmax(-1)
        prior = frozen_model.project(h0.mean(0, keepdim=True)).softmax(-1)
        q = ((p0 / (p0 + prior + 1e-8)) / 0.05).softmax(-1)
    top_q, top_ids = q.topk(5, dim=-1)
    assert targets["target_ids"] == top_ids.tolist()
    np.testing.assert_allclose(targets["target_mass"], top_q.sum(-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.array(targets["target_weights"]), (top_q / top_q.sum(-1, keepdim=True)).numpy(),
                               rtol=1e-4, atol=1e-7)
    assert targets.features["target_ids"].feature.dtype == "int32"


def test_paper_temperature_is_the_default(frozen_model, tmp_path):
    targets = build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path, top_k=3)
    assert read_info(targets).params["temperature"] == 1e-4
    frozen_model.config.pooling, frozen_model.config.prompt = "last", '"{text}" in one word:"'
    targets = build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path / "last", top_k=3)
    assert read_info(targets).params["temperature"] == 1e-5


def test_unmerged_model_is_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="merge its LoRA first"):
        build_model_derived_targets(tiny_model, _corpus(), work_dir=tmp_path)


def test_interrupted_build_resumes_to_the_same_dataset(frozen_model, tmp_path, monkeypatch):
    uninterrupted = build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path / "a", top_k=4,
                                                shard_size=2)
    real_encode, calls = frozen_model.encode, []

    def crash_on_third_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(frozen_model, "encode", crash_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path / "b", top_k=4, shard_size=2)
    assert sorted(p.name for p in (tmp_path / "b").glob("h0-*")) == ["h0-000000.safetensors", "h0-000001.safetensors"]
    calls.clear()
    resumed = build_model_derived_targets(frozen_model, _corpus(), work_dir=tmp_path / "b", top_k=4, shard_size=2)
    assert len(calls) == 2, "only the missing shard is recomputed (plus one probe of a saved shard)"
    assert resumed.to_dict() == uninterrupted.to_dict()


def test_shards_of_another_layout_are_refused(frozen_model, tmp_path):
    encode_corpus_in_shards(frozen_model, ["a", "b", "c"], tmp_path, shard_size=2)
    with pytest.raises(ValueError, match="another corpus layout"):
        encode_corpus_in_shards(frozen_model, ["a", "b", "x"], tmp_path, shard_size=2)


def test_shards_of_another_model_are_refused(frozen_model, tmp_path):
    encode_corpus_in_shards(frozen_model, ["a", "b", "c"], tmp_path, shard_size=2)
    with torch.no_grad():
        frozen_model.backbone.get_decoder().norm.weight.mul_(2.0)
    with pytest.raises(ValueError, match="computed by another model"):
        encode_corpus_in_shards(frozen_model, ["a", "b", "c"], tmp_path, shard_size=2)
