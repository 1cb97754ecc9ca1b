"""Rehearsals of the paper's four two-stage runs, on the CPU, with the shipped recipes: Mistral mean and last,
Llama-3 mean and last, each with its real tokenizer (tests/paper_tokenizers.py) and a tiny random backbone of
its architecture (MistralForCausalLM, LlamaForCausalLM).

The loopback Hub serves small samples in the exact shape of the paper's corpora (same repo ids, field and
file names), uploaded here with huggingface_hub. Only the backbone and the step counts are swapped;
everything else (bf16 weights under bf16 autocast with gradient checkpointing, batch, max length, LoRA,
temperature, the Hub loader, the evaluation length and similarity) is the recipe's own. Stage 2 writes
checkpoints, is interrupted and resumed by the same command, and the result is evaluated at the
recipe's length.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from text2token import Text2TokenModel
from text2token.corpora import load_corpus
from text2token.targets import load_targets, read_info
from text2token.trainer import Text2TokenTrainer

import paper_tokenizers
from model_fixtures import load_recipe_script

ROOT = Path(__file__).resolve().parents[2]
STAGE1_TEXTS, STAGE2_TEXTS = 24, 16
STAGE1_STEPS, STAGE2_STEPS = 2, 3
RUNS = {  # recipe folder, tokenizer, architecture
    "mistral": ("mistral-7b-instruct", paper_tokenizers.mistral_tokenizer_dir, MistralConfig, MistralForCausalLM),
    "llama3": ("llama-3-8b-instruct", paper_tokenizers.llama3_tokenizer_dir, LlamaConfig, LlamaForCausalLM),
}
# Stage-1 targets of known sentences, written out by hand for each tokenizer (the authors' construction:
# [\W_]+ -> space, NLTK stopwords dropped, the rest tokenized; special tokens, whitespace-only pieces and
# Mistral's lone `▁` (28705) dropped; repeated ids kept once, in order of appearance).
KNOWN = ["The cat sat on the mat.", "In 1990, 42 rivers flooded the valley!", "She doesn't like_snake-case words"]
EXPECTED_TARGETS = {
    "mistral": [["▁cat", "▁sat", "▁mat"],
                ["1", "9", "0", "4", "2", "▁rivers", "▁flo", "oded", "▁valley"],  # "▁1990" = ▁ 1 9 9 0
                ["▁like", "▁snake", "▁case", "▁words"]],
    "llama3": [["cat", "Ġsat", "Ġmat"],
               ["199", "0", "42", "Ġrivers", "Ġflooded", "Ġvalley"],  # digits in threes; " 42" = Ġ 42
               ["like", "Ġsnake", "Ġcase", "Ġwords"]],
}
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


@pytest.fixture(scope="session", params=sorted(RUNS))
def paper_tokenizer(request):
    """(family, tokenizer folder): fetched once into the cache, checked against known ids."""
    return request.param, RUNS[request.param][1]()


def tiny_backbone_dir(folder: Path, family: str, tokenizer_dir: Path) -> Path:
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    _, _, config_class, model_class = RUNS[family]
    extra = {"sliding_window": None} if family == "mistral" else {}
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                          tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, **extra)
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_stage1_targets_of_known_sentences(paper_tokenizer):
    import datasets

    from text2token.targets import build_data_driven_targets

    family, folder = paper_tokenizer
    tokenizer = AutoTokenizer.from_pretrained(folder)
    targets = build_data_driven_targets(datasets.Dataset.from_dict({"text": KNOWN}), tokenizer, max_length=128)
    assert [tokenizer.convert_ids_to_tokens(row) for row in targets["target_ids"]] == EXPECTED_TARGETS[family]
    for weights in targets["target_weights"]:
        assert weights == pytest.approx([1 / len(weights)] * len(weights))  # uniform over the unique ids
    if family == "mistral":
        assert 28705 not in {i for row in targets["target_ids"] for i in row}


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
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_paper_recipes_rehearse_the_paper_run(tmp_path, paper_corpora, paper_tokenizer, pooling, lora_snapshots,
                                              monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    family, tokenizer_dir = paper_tokenizer
    recipes = ROOT / "recipes" / RUNS[family][0]
    suffix = "" if pooling == "mean" else "-last"
    backbone = tiny_backbone_dir(tmp_path / f"tiny-{family}", family, tokenizer_dir)
    stage1_texts, stage2_texts = paper_corpora
    # use_cpu: TrainingArguments refuses bf16 without a GPU unless told the run is on the CPU on purpose;
    # dataloader workers would only add process start-up time here.
    cpu = "--use_cpu true --dataloader_num_workers 0 --save_steps 1 --save_total_limit 4"

    def pipeline(stage2_steps):
        return load_recipe_script("pipeline").main([
            "--stage1", str(recipes / f"stage1{suffix}.yaml"), "--stage2", str(recipes / f"stage2{suffix}.yaml"),
            "--output_root", str(tmp_path / "runs"), "--skip_eval",
            "--stage1_args", f"--backbone {backbone} --max_steps {STAGE1_STEPS} {cpu}",
            "--stage2_args", f"--max_steps {stage2_steps} {cpu}",
        ])

    first = pipeline(STAGE2_STEPS - 1)
    stage1, stage2 = Path(first["stage1"]["output_dir"]), Path(first["stage2"]["output_dir"])
    assert (stage2 / f"checkpoint-{STAGE2_STEPS - 1}").is_dir()
    # Interrupted before it finished (its completion marker gone), then the same command, longer: stage 1 is
    # skipped, stage 2 resumes from its last checkpoint and continues the step count.
    (stage2 / "training_complete.json").unlink()
    summary = pipeline(STAGE2_STEPS)
    assert summary["stage1"]["global_step"] == STAGE1_STEPS and summary["stage2"]["global_step"] == STAGE2_STEPS
    assert len(lora_snapshots) == 3  # stage 1 once, stage 2 twice (the first run and its resume)
    state = json.loads((stage2 / f"checkpoint-{STAGE2_STEPS}" / "trainer_state.json").read_text())
    assert [log["step"] for log in state["log_history"] if "loss" in log] == list(range(1, STAGE2_STEPS + 1))

    # Both corpora came through the Hub loader, whole, and the targets were built from them.
    info1, info2 = read_info(load_targets(stage1 / "targets")), read_info(load_targets(stage2 / "targets"))
    assert (info1.method, info1.corpus, len(load_targets(stage1 / "targets"))) == (
        "data", "cfli/pretrain_wiki", len(stage1_texts))
    assert (info2.method, len(load_targets(stage2 / "targets"))) == ("model", len(stage2_texts))
    assert info2.corpus.startswith("princeton-nlp/datasets-for-simcse") and "wiki1m_for_simcse.txt" in info2.corpus
    assert info2.params["temperature"] == (1e-4 if pooling == "mean" else 1e-5)
    assert info1.vocab_size == info2.vocab_size == len(AutoTokenizer.from_pretrained(tokenizer_dir))

    # Every run on a bf16 backbone with fp32 LoRA, under bf16 autocast, with gradient checkpointing;
    # every LoRA tensor trained.
    for run in lora_snapshots:
        model = run["model"]
        assert model.config.lora is not None and model.config.pooling == pooling
        assert model.backbone.get_input_embeddings().weight.dtype == torch.bfloat16
        assert model.backbone.is_activation_checkpointing
        assert run["autocast"] and all(run["autocast"]), "training forwards ran without bf16 autocast"
        assert len(run["trained"]) == 2 * 4 * 2  # lora_A and lora_B on q/k/v/o of two layers
        for name, before in run["initial"].items():
            after = run["trained"][name]
            assert after.dtype == torch.float32, f"{name} is {after.dtype}"
            assert not torch.equal(after, before), f"{name} did not move"

    # The final model reloads (LoRA merged, weights in bf16) to the embeddings the trained model gave.
    final = Text2TokenModel.from_pretrained(stage2)
    assert final.config.lora is None and final.config.pooling == pooling
    assert (final.config.inference_max_length, final.config.similarity) == (1024, "dot")  # the authors' evaluation
    reloaded = final.encode(PROBE)
    trained = lora_snapshots[-1]["embeddings"]
    cosine = (reloaded * trained).sum(-1) / (np.linalg.norm(reloaded, axis=-1) * np.linalg.norm(trained, axis=-1))
    assert cosine.min() > 0.999, cosine

    # Evaluation at the recipe's length, scored with the recipe's similarity.
    table = load_recipe_script("evaluate").main([
        "--model", str(stage2), "--label", "final", "--tasks", "OfflineLeeSTS", "--quick", "8",
        "--output_dir", str(tmp_path / "eval"), "--batch_size", "8"])
    assert table.loc["final", "max_tokens"] == 1024
    meta = json.loads(next((tmp_path / "eval" / "mteb" / "results").rglob("model_meta.json")).read_text())
    assert meta["similarity_fn_name"] == "dot" and meta["max_tokens"] == 1024
