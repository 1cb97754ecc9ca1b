"""Targets and models pushed to the loopback Hub (tests/hub_server.py) and loaded back, with their cards.

Each test uses a fresh repo id; `hub` fails a test that reached for a host other than loopback.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard, HfApi, ModelCard, hf_hub_download
from transformers import AutoModel

from text2token import Text2TokenModel
from text2token.arguments import Text2TokenTrainingArguments
from text2token.hub import render_model_card
from text2token.hub_targets import load_target_dataset, push_targets_to_hub
from text2token.targets import build_data_driven_targets, read_info
from text2token.targets.schema import INFO_FILE
from text2token.trainer import Text2TokenTrainer

from model_fixtures import SENTENCES


def _repo_id(kind: str) -> str:
    return f"loopback/{kind}-{uuid.uuid4().hex[:10]}"


def _targets(tokenizer, texts=SENTENCES):
    corpus = datasets.Dataset.from_dict({"text": list(texts)})
    return build_data_driven_targets(corpus, tokenizer, corpus="toy-sentences", backbone="loopback/tiny-llama")


def _merged_embeddings(model, folder):
    """Embeddings of `model` as published (LoRA merged), computed from a local save: the Hub round
    trip must reproduce them exactly, while merging itself moves floats by ~1e-6."""
    model.save_pretrained(folder, merge_lora=True)
    expected = Text2TokenModel.from_pretrained(folder).encode(SENTENCES)
    np.testing.assert_allclose(expected, model.encode(SENTENCES), atol=1e-5, rtol=0)
    return expected


def _train(model, tmp_path, targets, steps=3, **overrides):
    args = Text2TokenTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4, learning_rate=5e-3,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0, **overrides)
    trainer = Text2TokenTrainer(model=model, args=args, train_dataset=targets)
    trainer.train()
    return trainer


def test_targets_round_trip_with_metadata_and_card(hub, real_tokenizer):
    # The last text is all stopwords: it is dropped, and the card must say so.
    targets = _targets(real_tokenizer, SENTENCES + ["and the of it"])
    info = read_info(targets)
    assert info.dropped == {"empty_target": 1}
    repo_id = _repo_id("targets")
    push_targets_to_hub(targets, repo_id)

    loaded = load_target_dataset(repo_id)
    assert loaded.features == targets.features
    assert loaded.to_dict() == targets.to_dict()  # float32 weights round-trip exactly
    assert read_info(loaded) == info
    assert json.loads(open(hf_hub_download(repo_id, INFO_FILE, repo_type="dataset")).read())["method"] == "data"

    card = DatasetCard.load(repo_id, repo_type="dataset")
    assert {"text2token", "sentence-embeddings"} <= set(card.data.tags)
    assert card.data.license and card.data.to_dict()["dataset_info"]["features"], "push_to_hub's YAML is kept"
    text = card.text
    assert "**Data-driven** targets" in text and "| method | `data` (data-driven) |" in text
    assert "| `weighting` | `uniform` |" in text and "| `top_k` | `None` |" in text
    assert info.tokenizer_fingerprint in text and "toy-sentences" in text and "loopback/tiny-llama" in text
    assert "no content token left" in text and "| 1 |" in text  # the dropped row, with its reason
    assert f"| mean_target_size | {info.stats['mean_target_size']:.4f} |" in text
    top_token = info.stats["top_tokens"][0][0]
    assert repr(top_token) in text
    assert f'load_target_dataset("{repo_id}")' in text


def test_load_target_dataset_from_parquet_and_clear_errors(hub, real_tokenizer, tmp_path):
    targets = _targets(real_tokenizer)
    parquet = tmp_path / "targets.parquet"
    targets.to_parquet(str(parquet))
    (tmp_path / INFO_FILE).write_text(read_info(targets).to_json())
    loaded = load_target_dataset(parquet)
    assert loaded.to_dict() == targets.to_dict() and read_info(loaded) == read_info(targets)

    plain = tmp_path / "plain.parquet"
    datasets.Dataset.from_dict({"text": ["a", "b"]}).to_parquet(str(plain))
    with pytest.raises(ValueError, match=r"plain\.parquet.*missing target column"):
        load_target_dataset(plain)
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        load_target_dataset(tmp_path / "nowhere.parquet")
    with pytest.raises(FileNotFoundError, match="is not a folder or file"):
        load_target_dataset(str(tmp_path / "no" / "such" / "folder"))
    missing_repo = _repo_id("missing")
    with pytest.raises(FileNotFoundError, match=missing_repo):
        load_target_dataset(missing_repo)
    with pytest.raises(ValueError, match="no TargetInfo"):
        push_targets_to_hub(datasets.Dataset.from_dict({"text": ["a"], "target_ids": [[1]],
                                                        "target_weights": [[1.0]]}), _repo_id("refused"))


def test_pushed_model_reloads_with_auto_model_without_remote_code(hub, tiny_model, tmp_path):
    repo_id = _repo_id("model")
    tiny_model.push_to_hub(repo_id)  # LoRA merged into the published weights

    reloaded = AutoModel.from_pretrained(repo_id)
    assert type(reloaded) is Text2TokenModel, "text2token's own class, not remote code"
    assert reloaded.config.lora is None
    np.testing.assert_array_equal(reloaded.encode(SENTENCES), _merged_embeddings(tiny_model, tmp_path / "local"))

    files = set(HfApi().list_repo_files(repo_id))
    assert {"README.md", "model.safetensors", "config.json", "tokenizer.json", "modeling.py", "adapters.py",
            "configuration.py"} <= files
    config = json.loads(open(hf_hub_download(repo_id, "config.json")).read())
    assert config["auto_map"] == {"AutoConfig": "configuration.Text2TokenConfig",
                                  "AutoModel": "modeling.Text2TokenModel"}
    card = ModelCard.load(repo_id)
    assert "text2token" in card.data.tags and card.data.library_name == "sentence-transformers"
    assert f'AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)' in card.text
    assert "r=4, alpha=8" in card.text and "merged into the published weights" in card.text


# Runs where text2token cannot be imported at all: only the code shipped with the model may run.
CONSUMER_WITHOUT_TEXT2TOKEN = textwrap.dedent("""
    import importlib.abc, sys
    import numpy as np

    class NoText2Token(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "text2token":
                raise ImportError("text2token is not installed here")

    sys.meta_path.insert(0, NoText2Token())
    from transformers import AutoModel

    repo_id, out, texts = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        AutoModel.from_pretrained(repo_id)
        raise SystemExit("loaded remote code without trust_remote_code=True")
    except ValueError as exc:
        assert "trust_remote_code" in str(exc), exc
    model = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    assert not any(m.split(".")[0] == "text2token" for m in sys.modules)
    np.save(out, model.encode(texts))
    print()  # after the unanswered trust_remote_code prompt
    print("loaded from", type(model).__module__)
""")


def test_remote_code_consumer_without_text2token(hub, tiny_model, tmp_path):
    repo_id = _repo_id("remote")
    tiny_model.push_to_hub(repo_id)
    out = tmp_path / "embeddings.npy"
    # Same HF_ENDPOINT / HF_HOME (set at conftest import); outside the repo so `text2token/` is not on the path.
    result = subprocess.run([sys.executable, "-c", CONSUMER_WITHOUT_TEXT2TOKEN, repo_id, str(out), *SENTENCES],
                            cwd=tmp_path, env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith("loaded from transformers_modules."), result.stdout
    # Only the load without trust_remote_code may ask; the trusted one (tokenizer included) must not.
    assert result.stdout.count("Do you wish to run the custom code") == 1, result.stdout
    np.testing.assert_allclose(np.load(out), _merged_embeddings(tiny_model, tmp_path / "local"), atol=1e-6, rtol=0)


def test_model_card_shows_run_data(tiny_model, tmp_path):
    targets = _targets(tiny_model.tokenizer, SENTENCES * 2)
    trainer = _train(tiny_model, tmp_path, targets)
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 3

    card = render_model_card(tiny_model, repo_id="me/tiny", targets=read_info(targets), training_args=trainer.args,
                             log_history=trainer.state.log_history, eval_results={"lee_sts": 0.4321})
    text = card.text
    assert f"| first logged | {losses[0][0]} | {losses[0][1]:.4f} |" in text
    assert f"| last logged | {losses[-1][0]} | {losses[-1][1]:.4f} |" in text
    assert "stage 1 (data-driven targets)" in text and "`weighting=uniform`" in text
    assert "| objective | token_targets |" in text and "| learning rate | 0.005 |" in text
    assert "= 4 |" in text and "| steps | 3 |" in text
    assert "| lee_sts |  | main_score | full | 0.4321 |" in text  # task, type, metric, cut, score
    assert card.data.base_model == "loopback/tiny-llama" and "sentence-embeddings" in card.data.tags

    bare = render_model_card(tiny_model.config)  # no run data: still a valid card
    assert "No training run was recorded" in bare.text and "No evaluation results" in bare.text


def test_trainer_saves_and_publishes_its_card(hub, tiny_model, tmp_path):
    repo_id = _repo_id("trained")
    trainer = _train(tiny_model, tmp_path, _targets(tiny_model.tokenizer, SENTENCES * 2), steps=2,
                     hub_model_id=repo_id)
    last_loss = f"{[e['loss'] for e in trainer.state.log_history if 'loss' in e][-1]:.4f}"

    trainer.save_model()
    local = ModelCard.load(tmp_path / "out" / "README.md")
    assert last_loss in local.text and "text2token" in local.data.tags

    trainer.push_to_hub(eval_results={"toy_task": 0.5})
    card = ModelCard.load(repo_id)
    assert last_loss in card.text and "| toy_task |  | main_score | full | 0.5000 |" in card.text
    assert json.loads(open(hf_hub_download(repo_id, "config.json")).read())["lora"] is None, "published merged"

    # The model keeps the run data, so its own push_to_hub publishes the same card under its new name.
    other = _repo_id("again")
    tiny_model.push_to_hub(other)
    again = ModelCard.load(other)
    assert last_loss in again.text and f'AutoModel.from_pretrained("{other}")' in again.text


def test_pushed_targets_train_through_targets_owner_name(hub, tiny_backbone_dir, tmp_path):
    """The round trip the user asked for: build, push, then train with `--targets owner/name`."""
    from text2token.cli import main as cli
    from text2token.commands.train import main as train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    cli(["targets", "build", "--backbone", str(tiny_backbone_dir), "--corpus", str(corpus), "--max_length", "32",
         "--output", str(tmp_path / "built")])
    built = load_target_dataset(tmp_path / "built")
    repo_id = _repo_id("trainable-targets")
    push_targets_to_hub(built, repo_id)

    out = tmp_path / "run"
    common = ["--backbone", str(tiny_backbone_dir), "--max_length", "32", "--targets", repo_id, "--max_steps", "2",
              "--per_device_train_batch_size", "4", "--learning_rate", "5e-3", "--logging_steps", "1", "--save_strategy", "no",
              "--report_to", "none", "--use_cpu", "true", "--seed", "0"]
    train(common + ["--output_dir", str(out)])
    finished = json.loads((out / "training_complete.json").read_text())
    assert finished["global_step"] == 2 and np.isfinite(finished["last_loss"])
    record = json.loads((out / "text2token_run.json").read_text())
    assert record["targets_key"] == read_info(built).spec["key"], "the pushed targets keep their spec"
    assert not (out / "targets").exists(), "supplied targets are trained on as they are, not rebuilt"
    with pytest.raises(ValueError, match=r"differ from what this run asks for .*method: 'data' -> 'model'"):
        train(common + ["--target_method", "model", "--output_dir", str(tmp_path / "refused")])
