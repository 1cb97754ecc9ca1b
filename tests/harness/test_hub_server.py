"""Round trips of the real HF clients against the in-process LoopbackHub (see tests/hub_server.py).

Every test uses a fresh repo id; the autouse fixture fails a test that reached for any host other
than loopback (the real Hub included), and checks the test did talk to our server.
"""

import hashlib
import os
import uuid

import numpy as np
import pytest


def _repo_id(kind: str) -> str:
    return f"loopback/{kind}-{uuid.uuid4().hex[:10]}"


def _sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(autouse=True)
def _only_loopback(loopback_hub):
    blocked_before, served_before = len(loopback_hub.blocked_hosts), len(loopback_hub.requests)
    yield
    from huggingface_hub import constants

    assert os.environ["HF_ENDPOINT"] == constants.ENDPOINT == loopback_hub.url  # read at import time
    assert loopback_hub.blocked_hosts[blocked_before:] == [], "a non-loopback host was contacted"
    assert len(loopback_hub.requests) > served_before, "the test never reached the loopback hub"


def test_dataset_push_and_load_round_trip(loopback_hub, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    repo_id = _repo_id("dataset")
    rng = np.random.default_rng(0)
    features = datasets.Features(
        {"ids": datasets.List(datasets.Value("int32")), "values": datasets.List(datasets.Value("float32"))}
    )
    rows = [rng.integers(1, 50, size=n) for n in (3, 0, 7, 1)]
    data = {
        "ids": [r.astype(np.int32).tolist() for r in rows],
        # float32 values that are not representable in fewer bits, to catch any lossy cast
        "values": [rng.standard_normal(len(r)).astype(np.float32).tolist() for r in rows],
    }
    ds = datasets.Dataset.from_dict(data, features=features)
    ds.push_to_hub(repo_id)

    # push_to_hub wrote a README.md card with the features; give it a body and push the card back.
    card = DatasetCard.load(repo_id)
    assert "dataset_info" in card.data.to_dict()
    card_text = "\n# Loopback dataset\n\nInt32 ids and float32 values, pushed to a loopback hub.\n"
    card.text = card_text
    card.push_to_hub(repo_id)

    loaded = datasets.load_dataset(repo_id, split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.features == features
    assert loaded.num_rows == ds.num_rows
    assert loaded.to_dict() == ds.to_dict()
    for column, dtype in (("ids", np.int32), ("values", np.float32)):
        got, want = (d.data.column(column).combine_chunks() for d in (loaded, ds))
        assert got.type == want.type  # list<int32> / list<float>, not widened
        assert got.offsets.equals(want.offsets)
        got_values = got.flatten().to_numpy()
        assert got_values.dtype == dtype
        assert got_values.tobytes() == np.concatenate(data[column]).astype(dtype).tobytes()  # bit-exact

    reloaded_card = DatasetCard.load(repo_id)
    assert reloaded_card.text == card_text
    assert reloaded_card.data.to_dict()["dataset_info"] == card.data.to_dict()["dataset_info"]


def test_upload_folder_then_snapshot_download(loopback_hub, tmp_path):
    import torch
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from safetensors.torch import save_file

    api = HfApi()
    repo_id = _repo_id("folder")
    folder = tmp_path / "upload"
    (folder / "nested").mkdir(parents=True)
    save_file({"w": torch.randn(16, 8), "b": torch.arange(5, dtype=torch.int64)}, str(folder / "weights.safetensors"))
    (folder / "nested" / "notes.txt").write_text("hello loopback\n")

    api.create_repo(repo_id)
    first = api.upload_folder(repo_id=repo_id, folder_path=folder)
    api.create_repo(repo_id, exist_ok=True)  # 409 tolerated

    snapshot = snapshot_download(repo_id, cache_dir=tmp_path / "cache")
    for rel in ("weights.safetensors", "nested/notes.txt"):
        assert _sha256(os.path.join(snapshot, rel)) == _sha256(folder / rel)
    assert sorted(api.list_repo_files(repo_id)) == ["nested/notes.txt", "weights.safetensors"]
    # Unchanged files (LFS and regular) are recognised from the preupload oids: no new commit.
    assert api.upload_folder(repo_id=repo_id, folder_path=folder).oid == first.oid

    # A second commit; the first one must stay reachable by its sha.
    api.upload_file(path_or_fileobj=b"changed\n", path_in_repo="nested/notes.txt", repo_id=repo_id)
    assert api.model_info(repo_id).sha != first.oid
    old = hf_hub_download(repo_id, "nested/notes.txt", revision=first.oid, cache_dir=tmp_path / "cache")
    new = hf_hub_download(repo_id, "nested/notes.txt", cache_dir=tmp_path / "cache")
    assert open(old).read() == "hello loopback\n" and open(new).read() == "changed\n"


def test_transformers_push_and_from_pretrained(loopback_hub, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=128, max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config)
    repo_id = _repo_id("llama")
    model.push_to_hub(repo_id)

    reloaded = AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=str(tmp_path / "cache"))
    want, got = model.state_dict(), reloaded.state_dict()
    assert type(reloaded) is LlamaForCausalLM
    assert want.keys() == got.keys()
    for name in want:
        assert want[name].dtype == got[name].dtype and torch.equal(want[name], got[name]), name


def test_missing_repo_and_file_raise_client_errors(loopback_hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    missing = _repo_id("missing")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(missing)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(missing)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(missing, "config.json", cache_dir=tmp_path / "cache")

    repo_id = _repo_id("present")
    api.create_repo(repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.json", cache_dir=tmp_path / "cache")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "nope.json", revision="0" * 40, cache_dir=tmp_path / "cache")
