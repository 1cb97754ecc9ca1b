"""A rehearsal of the paper's two-stage run, on the CPU, with the shipped Mistral recipes.

The loopback Hub serves small samples in the exact shape of the paper's corpora (same repo ids, field and
file names), uploaded here with huggingface_hub. Only the backbone (a tiny random `MistralForCausalLM` with
the real tokenizer) and the step counts are swapped; everything else (bf16 weights with bf16 mixed
precision, batch, max length, LoRA, temperature, the Hub loader) is the recipe's own.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from transformers import MistralConfig, MistralForCausalLM

from text2token import Text2TokenModel
from text2token.corpora import load_corpus
from text2token.targets import load_targets, read_info
from text2token.trainer import Text2TokenTrainer

from model_fixtures import load_recipe_script

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "mistral-7b-instruct"
STAGE1_TEXTS, STAGE2_TEXTS = 40, 24
STAGE1_STEPS, STAGE2_STEPS = 2, 3
PROBE = ["A small boat crossed the lake at dawn.", "the act of singing in a choir"]


@pytest.fixture
def paper_corpora(loopback_hub):
    """`cfli/pretrain_wiki` (jsonl rows with an `input` field) and `princeton-nlp/datasets-for-simcse`
    (one sentence per line in `wiki1m_for_simcse.txt`, beside a CSV the recipe must not read)."""
    blocked_before = len(loopback_hub.blocked_hosts)
    glosses = load_corpus("wordnet-glosses")["text"]  # general prose, packaged with text2token
    stage1, stage2 = glosses[:STAGE1_TEXTS], glosses[STAGE1_TEXTS:STAGE1_TEXTS + STAGE2_TEXTS]
    api = HfApi()
    for repo in ("cfli/pretrain_wiki", "princeton-nlp/datasets-for-simcse"):
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
    rows = "".join(json.dumps({"input": text, "output": ""}) + "\n" for text in stage1)
    api.upload_file(path_or_fileobj=io.BytesIO(rows.encode()), path_in_repo="pretrain_wiki.jsonl",
                    repo_id="cfli/pretrain_wiki", repo_type="dataset")
    api.upload_file(path_or_fileobj=io.BytesIO("\n".join(stage2).encode() + b"\n"),
                    path_in_repo="wiki1m_for_simcse.txt", repo_id="princeton-nlp/datasets-for-simcse",
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=io.BytesIO(b"sent0,sent1,hard_neg\na,b,c\n"), path_in_repo="nli_for_simcse.csv",
                    repo_id="princeton-nlp/datasets-for-simcse", repo_type="dataset")
    yield stage1, stage2
    assert loopback_hub.blocked_hosts[blocked_before:] == [], "a non-loopback host was contacted"


@pytest.fixture
def tiny_mistral_dir(tmp_path, real_tokenizer):
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(real_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           sliding_window=None, tie_word_embeddings=False, pad_token_id=real_tokenizer.pad_token_id)
    folder = tmp_path / "tiny-mistral"
    MistralForCausalLM(config).save_pretrained(folder)
    real_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def lora_snapshots(monkeypatch):
    """Record every run's LoRA parameters right after they are added and right before the final save."""
    runs = []
    add_lora, save_model = Text2TokenModel.add_lora, Text2TokenTrainer.save_model

    def lora_state(model):
        return {name: param.detach().clone() for name, param in model.named_parameters() if "lora_" in name}

    def recording_add_lora(model, *args, **kwargs):
        add_lora(model, *args, **kwargs)
        run = {"model": model, "initial": lora_state(model), "autocast": []}
        runs.append(run)
        # Whether the training forward passes ran under bf16 autocast (the Trainer's mixed precision).
        model.backbone.get_input_embeddings().register_forward_pre_hook(lambda module, args: run["autocast"].append(
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
            if module.training else None)

    def recording_save_model(trainer, output_dir=None, _internal_call=False):
        if not _internal_call:  # the final save, which merges the adapter
            runs[-1]["trained"] = lora_state(trainer.model)
            runs[-1]["embeddings"] = trainer.model.encode(PROBE)
        save_model(trainer, output_dir, _internal_call)

    monkeypatch.setattr(Text2TokenModel, "add_lora", recording_add_lora)
    monkeypatch.setattr(Text2TokenTrainer, "save_model", recording_save_model)
    return runs


@pytest.mark.slow
def test_mistral_recipes_rehearse_the_paper_run(tmp_path, paper_corpora, tiny_mistral_dir, lora_snapshots,
                                                monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    stage1_texts, stage2_texts = paper_corpora
    # use_cpu: TrainingArguments refuses bf16 without a GPU unless told the run is on the CPU on purpose;
    # dataloader workers would only add process start-up time here.
    cpu = "--use_cpu true --dataloader_num_workers 0"
    summary = load_recipe_script("pipeline").main([
        "--stage1", str(RECIPES / "stage1.yaml"), "--stage2", str(RECIPES / "stage2.yaml"),
        "--output_root", str(tmp_path / "runs"), "--skip_eval",
        "--stage1_args", f"--backbone {tiny_mistral_dir} --max_steps {STAGE1_STEPS} {cpu}",
        "--stage2_args", f"--max_steps {STAGE2_STEPS} {cpu}",
    ])
    stage1, stage2 = Path(summary["stage1"]["output_dir"]), Path(summary["stage2"]["output_dir"])
    assert summary["stage1"]["global_step"] == STAGE1_STEPS and summary["stage2"]["global_step"] == STAGE2_STEPS

    # Both corpora came through the Hub loader, whole, and the targets were built from them.
    info1, info2 = read_info(load_targets(stage1 / "targets")), read_info(load_targets(stage2 / "targets"))
    assert (info1.method, info1.corpus, len(load_targets(stage1 / "targets"))) == (
        "data", "cfli/pretrain_wiki", len(stage1_texts))
    assert (info2.method, len(load_targets(stage2 / "targets"))) == ("model", len(stage2_texts))
    assert info2.corpus.startswith("princeton-nlp/datasets-for-simcse") and "wiki1m_for_simcse.txt" in info2.corpus
    assert info2.params["temperature"] == 1e-4

    # Two runs (stage 1, stage 2), each on a bf16 backbone with fp32 LoRA; every LoRA tensor trained.
    assert len(lora_snapshots) == 2
    for run in lora_snapshots:
        model = run["model"]
        assert model.config.lora is not None
        assert model.backbone.get_input_embeddings().weight.dtype == torch.bfloat16
        assert run["autocast"] and all(run["autocast"]), "training forwards ran without bf16 autocast"
        assert len(run["trained"]) == 2 * 4 * 2  # lora_A and lora_B on q/k/v/o of two layers
        for name, before in run["initial"].items():
            after = run["trained"][name]
            assert after.dtype == torch.float32, f"{name} is {after.dtype}"
            assert not torch.equal(after, before), f"{name} did not move"

    # The final model reloads (LoRA merged, weights in bf16) to the embeddings the trained model gave.
    final = Text2TokenModel.from_pretrained(stage2)
    assert final.config.lora is None and final.config.pooling == "mean"
    reloaded = final.encode(PROBE)
    trained = lora_snapshots[-1]["embeddings"]
    cosine = (reloaded * trained).sum(-1) / (np.linalg.norm(reloaded, axis=-1) * np.linalg.norm(trained, axis=-1))
    assert cosine.min() > 0.999, cosine
    np.testing.assert_allclose(reloaded, Text2TokenModel.from_pretrained(stage2).encode(PROBE), rtol=0, atol=0)
