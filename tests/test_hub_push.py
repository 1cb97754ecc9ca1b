"""What reaches the (loopback) Hub, and how target datasets come back from it (issue 12, items 2 and 5):
a pushed run uploads only its model files, never a pickle or the token; a target dataset is one
commit; offline loads use the cache or say it is missing; a mistyped path never reaches the Hub."""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi

from text2token.arguments import Text2TokenTrainingArguments
from text2token.checkpointing import model_file_paths
from text2token.hub_targets import load_target_dataset, push_targets_to_hub
from text2token.targets import build_data_driven_targets, read_info, save_targets
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES

SECRET = "hf_pushTokenMustNeverBeStored0123456789"


def _repo_id(kind: str) -> str:
    return f"loopback/{kind}-{uuid.uuid4().hex[:10]}"


def _targets(tokenizer, texts=SENTENCES):
    return build_data_driven_targets(datasets.Dataset.from_dict({"text": list(texts)}), tokenizer,
                                     corpus="toy-sentences", backbone="loopback/tiny-llama")


def _commits(hub, repo_id):
    return [r for r in hub.requests if r[0] == "POST" and r[1].endswith("/commit") and repo_id in r[3]]


def _files_containing(root, needle: bytes):
    return [str(p) for p in Path(root).rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_pushed_run_uploads_only_the_model_files_and_never_the_token(hub, tiny_model, tmp_path):
    repo_id = _repo_id("pushed-run")
    out = tmp_path / "out"
    targets = _targets(tiny_model.tokenizer, SENTENCES * 4)
    save_targets(targets, out / "targets")  # where the recipes keep them: the corpus text must stay local
    args = Text2TokenTrainingArguments(
        output_dir=str(out), max_steps=4, save_steps=2, per_device_train_batch_size=4, logging_steps=1,
        report_to="none", use_cpu=True, push_to_hub=True, hub_model_id=repo_id, hub_token=SECRET)
    trainer = Text2TokenTrainer(model=tiny_model, args=args, train_dataset=targets)
    trainer.train()
    in_progress = len(_commits(hub, repo_id))
    assert in_progress >= 1, "no in-progress push from a checkpoint"
    trainer.push_to_hub()
    assert len(_commits(hub, repo_id)) == in_progress + 1

    published = set(model_file_paths(str(out)))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "modeling.py"} <= published
    files = set(HfApi().list_repo_files(repo_id)) - {".gitattributes"}
    assert files == published, f"uploaded beyond the model files: {sorted(files - published)}"
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert (out / "checkpoint-4" / "optimizer.pt").is_file() and not list(out.glob(".hub-upload-*"))
    assert _files_containing(hub._root, SECRET.encode()) == [], "the token is in an uploaded blob"
    assert _files_containing(out, SECRET.encode()) == [], "the token is in the output folder"


def test_pushing_whole_checkpoints_is_refused(tiny_model, tmp_path):
    args = Text2TokenTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True,
                                       push_to_hub=True, hub_model_id=_repo_id("x"), hub_strategy="checkpoint")
    with pytest.raises(ValueError, match="hub_strategy='checkpoint' uploads whole checkpoints"):
        Text2TokenTrainer(model=tiny_model, args=args, train_dataset=_targets(tiny_model.tokenizer))


def test_target_dataset_is_pushed_in_one_commit_and_replaces_its_shards(hub, real_tokenizer):
    repo_id = _repo_id("one-commit")
    push_targets_to_hub(_targets(real_tokenizer), repo_id)
    assert len(_commits(hub, repo_id)) == 1, "rows, metadata and card must land in one commit"
    push_targets_to_hub(_targets(real_tokenizer, SENTENCES * 50), repo_id, max_shard_size=2_000)
    assert len(_commits(hub, repo_id)) == 2
    shards = [f for f in HfApi().list_repo_files(repo_id, repo_type="dataset") if f.startswith("data/")]
    assert len(shards) > 1
    second = _targets(real_tokenizer, SENTENCES[:2])
    push_targets_to_hub(second, repo_id)  # fewer shards: the earlier ones must not be loaded beside them
    assert [f for f in HfApi().list_repo_files(repo_id, repo_type="dataset") if f.startswith("data/")] == \
        ["data/train-00000-of-00001.parquet"]
    loaded = load_target_dataset(repo_id)
    assert loaded.to_dict() == second.to_dict() and read_info(loaded) == read_info(second)


def test_targets_without_target_info_are_refused_unless_allowed(tiny_model, tmp_path):
    bare = datasets.Dataset.from_dict(_targets(tiny_model.tokenizer).to_dict())  # rows only, no TargetInfo
    assert read_info(bare) is None

    def args(**extra):
        return Text2TokenTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, report_to="none",
                                           use_cpu=True, **extra)

    with pytest.raises(ValueError, match=r"train_dataset: these targets carry no TargetInfo .*allow_unverified_targets=True"):
        Text2TokenTrainer(model=tiny_model, args=args(), train_dataset=bare)
    Text2TokenTrainer(model=tiny_model, args=args(allow_unverified_targets=True), train_dataset=bare).train()


OFFLINE_LOAD = textwrap.dedent("""
    import json, sys
    from text2token.hub_targets import load_target_dataset
    from text2token.targets import read_info

    cached, missing = sys.argv[1], sys.argv[2]
    loaded = load_target_dataset(cached)
    print(json.dumps({"rows": loaded.to_dict(), "method": read_info(loaded).method}))
    try:
        load_target_dataset(missing)
    except FileNotFoundError as exc:
        print(json.dumps({"error": str(exc)}))
""")


def test_offline_loads_the_cached_targets_and_names_a_missing_one(hub, real_tokenizer, tmp_path):
    repo_id, missing = _repo_id("offline"), _repo_id("never-loaded")
    targets = _targets(real_tokenizer)
    push_targets_to_hub(targets, repo_id)
    load_target_dataset(repo_id)  # online once: now cached
    requests_before = len(hub.requests)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", OFFLINE_LOAD, repo_id, missing], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[0] == {"rows": targets.to_dict(), "method": "data"}
    assert missing in lines[1]["error"] and "HF_HUB_OFFLINE is set and this target dataset is not in the local cache" \
        in lines[1]["error"]
    assert len(hub.requests) == requests_before, "an offline load asked the Hub"


@pytest.mark.parametrize("source", ["./my_targets", "/data/runs/targets", "runs/stage1/targets", "targets.arrow"])
def test_a_mistyped_local_path_is_named_without_asking_the_hub(hub, source):
    requests_before = len(hub.requests)
    with pytest.raises(FileNotFoundError, match=rf"{source} is not a folder or file \(it looks like a local path"):
        load_target_dataset(source)
    assert len(hub.requests) == requests_before
