import json
from pathlib import Path

import pytest

from text2token import Text2TokenModel
from text2token.targets import load_targets, read_info
from text2token.arguments import (DataArguments, ModelArguments, Text2TokenTrainingArguments, check_recipe,
                                  parse_recipe_args)

from text2token.digests import weights_digest
from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[2]
RECIPE_TYPES = (ModelArguments, DataArguments, Text2TokenTrainingArguments)
TRAINING_RECIPES = sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate_configs")


# The values each shipped recipe must hold. The paper's come from the authors' code (GDNL-ACT/anruize_target_learn;
# recipes/README.md names the file of each); a changed recipe must change this table and that README together.
_PAPER_COMMON = {
    "dtype": "bfloat16", "bf16": True, "attention": "causal", "max_length": 128, "prompt": None,
    "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "learning_rate": 5e-5, "lr_scheduler_type": "constant", "warmup_steps": 0, "weight_decay": 0.0,
    "max_grad_norm": 1.0, "seed": 42,
    # the authors' evaluation: 1024 tokens, dot product (aa_gene_test*.py)
    "inference_max_length": 1024, "similarity": "dot",
}
_STAGE1 = {**_PAPER_COMMON, "corpus": "cfli/pretrain_wiki", "text_column": "input", "corpus_data_files": None,
           "target_method": "data", "weighting": "uniform", "target_temperature": None,
           "per_device_train_batch_size": 32, "gradient_accumulation_steps": 1, "max_steps": 100}
_STAGE2 = {**_PAPER_COMMON, "corpus": "princeton-nlp/datasets-for-simcse", "text_column": "text",
           "corpus_data_files": ["wiki1m_for_simcse.txt"], "target_method": "model", "target_top_k": 32}
_MEAN, _LAST = {"pooling": "mean"}, {"pooling": "last"}
_MISTRAL, _LLAMA = "mistralai/Mistral-7B-Instruct-v0.2", "meta-llama/Meta-Llama-3-8B-Instruct"


def _stage2(folder, pooling, batch, accumulation, steps):
    suffix = "" if pooling == "mean" else "-last"
    return {**_STAGE2, "pooling": pooling, "backbone": f"outputs/{folder}/stage1{suffix}",
            "target_temperature": 1e-4 if pooling == "mean" else 1e-5,
            "per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation, "max_steps": steps}


_CPU = {"backbone": "embedded:smollm2-135m-instruct", "dtype": None, "bf16": False, "pooling": "mean",
        "max_length": 64, "corpus": "wordnet-glosses", "learning_rate": 2e-4, "lr_scheduler_type": "linear",
        "warmup_steps": 10, "per_device_train_batch_size": 16, "lora_r": 16,
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
_SIMCSE = {"loss": "simcse", "simcse_temperature": 0.05, "simcse_attention_dropout": 0.3, "simcse_hidden_dropout": 0.0}
EXPECTED = {
    "mistral-7b-instruct/stage1.yaml": {**_STAGE1, **_MEAN, "backbone": _MISTRAL},
    "mistral-7b-instruct/stage1-last.yaml": {**_STAGE1, **_LAST, "backbone": _MISTRAL},
    "mistral-7b-instruct/stage2.yaml": _stage2("mistral-7b-instruct", "mean", 2, 2, 100),
    "mistral-7b-instruct/stage2-last.yaml": _stage2("mistral-7b-instruct", "last", 16, 2, 1000),
    "llama-3-8b-instruct/stage1.yaml": {**_STAGE1, **_MEAN, "backbone": _LLAMA},
    "llama-3-8b-instruct/stage1-last.yaml": {**_STAGE1, **_LAST, "backbone": _LLAMA},
    "llama-3-8b-instruct/stage2.yaml": _stage2("llama-3-8b-instruct", "mean", 2, 2, 100),
    "llama-3-8b-instruct/stage2-last.yaml": _stage2("llama-3-8b-instruct", "last", 32, 1, 100),
    "smollm2-135m/stage1.yaml": {**_CPU, "target_method": "data", "max_steps": 100},
    "smollm2-135m/stage2.yaml": {**_CPU, "backbone": "outputs/smollm2-135m/stage1", "target_method": "model",
                                 "target_top_k": 32, "max_train_samples": 2048, "max_steps": 128},
    "smollm2-135m/simcse.yaml": {**_CPU, **_SIMCSE, "attention": "causal", "max_steps": 100},
    # LLM2Vec on Text2Token's budget: MNTP as stage 1, SimCSE from the merged MNTP model as stage 2.
    "smollm2-135m/llm2vec-mntp.yaml": {**_CPU, "attention": "bidirectional", "loss": "mntp", "mntp_probability": 0.2,
                                       "mntp_mask_token": "_", "max_steps": 100},
    "smollm2-135m/llm2vec-simcse.yaml": {**_CPU, **_SIMCSE, "attention": "bidirectional", "max_steps": 128,
                                         "backbone": "outputs/smollm2-135m/llm2vec-mntp", "max_train_samples": 2048},
    # The patient variant: three times stage 1's steps, stage 2 over 4096 glosses.
    "smollm2-135m/long-stage1.yaml": {**_CPU, "target_method": "data", "max_steps": 300},
    "smollm2-135m/long-stage2.yaml": {**_CPU, "backbone": "outputs/smollm2-135m/long/stage1", "target_method": "model",
                                      "target_top_k": 32, "max_train_samples": 4096, "max_steps": 256},
}


def _recipe_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_the_expected_table_covers_every_shipped_recipe():
    assert sorted(map(_recipe_name, TRAINING_RECIPES)) == sorted(EXPECTED)


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=_recipe_name)
def test_every_recipe_holds_its_expected_values(recipe):
    # use_cpu: bf16 recipes are for GPUs, and TrainingArguments checks the hardware it runs on.
    parsed = parse_recipe_args(RECIPE_TYPES, ["--config", str(recipe), "--use_cpu", "true"])
    check_recipe(*parsed)
    expected = EXPECTED[_recipe_name(recipe)]
    actual = {}
    for key in expected:
        owner = next(args for args in parsed if hasattr(args, key))
        value = getattr(owner, key)
        actual[key] = getattr(value, "value", value)  # enums (lr_scheduler_type) compare by their string
    assert actual == expected


def test_corpus_data_files_are_refused_for_a_local_corpus(tmp_path):
    from text2token.corpora import load_corpus

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one line\n")
    with pytest.raises(ValueError, match=r"corpus_data_files=\['x.txt'\] picks files of a Hub dataset, but corpus "
                                         r".*corpus.txt is a local path"):
        load_corpus(str(corpus), data_files=["x.txt"])
    with pytest.raises(ValueError, match="corpus wordnet-glosses is a named corpus"):
        load_corpus("wordnet-glosses", data_files=["x.txt"])


def test_command_line_overrides_the_yaml():
    recipe = str(ROOT / "recipes/smollm2-135m/stage1.yaml")
    model_args, _, training_args = parse_recipe_args(RECIPE_TYPES, ["--config", recipe, "--max_steps", "7",
                                                                    "--pooling", "last"])
    assert training_args.max_steps == 7 and model_args.pooling == "last"


def test_unknown_yaml_key_is_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: 1.0e-4\nlerning_rate: 2.0e-4\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown option\(s\) \['lerning_rate'\]"):
        parse_recipe_args(RECIPE_TYPES, ["--config", str(config)])


def test_wrongly_typed_yaml_value_is_refused(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("max_steps: many\n")
    with pytest.raises(ValueError, match="bad.yaml: option --max_steps.*invalid int value: 'many'"):
        parse_recipe_args(RECIPE_TYPES, ["--config", str(config)])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        parse_recipe_args(RECIPE_TYPES, ["--config", str(tmp_path / "nope.yaml")])


def test_train_recipe_trains_saves_and_resumes(tmp_path, tiny_backbone_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 6))
    out = tmp_path / "run"
    common = ["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), "--backbone", str(tiny_backbone_dir),
              "--corpus", str(corpus), "--output_dir", str(out), "--per_device_train_batch_size", "4",
              "--save_steps", "2", "--logging_steps", "1", "--warmup_steps", "0",
              "--alignment_every", "2", "--alignment_texts", "4"]
    train = load_recipe_script("train")
    train.main(common + ["--max_steps", "4"])
    assert (out / "checkpoint-4").is_dir() and (out / "targets").is_dir()
    assert (out / "alignment.png").stat().st_size > 1000
    model = Text2TokenModel.from_pretrained(out)
    assert model.config.lora is None and model.encode(SENTENCES).shape[0] == len(SENTENCES)

    train.main(common + ["--max_steps", "6"])  # same command, longer: resumes from checkpoint-4
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    steps = [log["step"] for log in state["log_history"] if "loss" in log]
    assert steps == [1, 2, 3, 4, 5, 6], "the resumed run continues the step count, it does not restart"


def test_two_stage_pipeline_runs_both_stages_and_skips_finished_ones(tmp_path, tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))  # the embedding cache stays in tmp
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    pipeline = load_recipe_script("pipeline")
    flags = (f"--backbone {tiny_backbone_dir} --corpus {corpus} --per_device_train_batch_size 4 --save_steps 2 "
             f"--alignment_texts 4")
    argv = ["--output_root", str(tmp_path / "runs"), "--steps", "2", "--stage1_args", flags, "--eval_quick", "6",
            "--stage2_args", f"--corpus {corpus} --per_device_train_batch_size 4 --save_steps 2 --max_train_samples 8 "
                             f"--alignment_texts 4"]
    summary = pipeline.main(argv)
    stage1, stage2 = Path(summary["stage1"]["output_dir"]), Path(summary["stage2"]["output_dir"])
    stage2_targets = load_targets(stage2 / "targets")
    info = read_info(stage2_targets)
    assert info.method == "model" and info.params["temperature"] == 1e-4 and len(stage2_targets) == 8
    assert (stage2 / "targets" / "corpus_prior.safetensors").is_file()
    assert read_info(load_targets(stage1 / "targets")).method == "data"
    table = summary["table"]
    assert set(table) == {"text2token-stage2", "untrained"}
    assert table["text2token-stage2"]["train_wall_s"] > 0 and "Average" in table["untrained"]
    assert (stage2.parent / "eval" / "summary.md").is_file()
    final = Text2TokenModel.from_pretrained(stage2)
    assert final.config.lora is None and final.encode(SENTENCES).shape[0] == len(SENTENCES)

    before = (stage2 / "model.safetensors").stat().st_mtime_ns
    again = pipeline.main(argv)  # both stages complete: nothing is retrained
    assert (stage2 / "model.safetensors").stat().st_mtime_ns == before
    assert again["stage2"]["global_step"] == 2


def test_cli_builds_both_kinds_of_targets(tmp_path, tiny_backbone_dir, tiny_model, capsys):
    from text2token.cli import main as cli

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    cli(["targets", "build", "--target_method", "data", "--backbone", str(tiny_backbone_dir), "--corpus", str(corpus),
         "--output", str(tmp_path / "data")])
    assert read_info(load_targets(tmp_path / "data")).method == "data"
    tiny_model.save_pretrained(tmp_path / "model")
    cli(["targets", "build", "--target_method", "model", "--backbone", str(tmp_path / "model"), "--corpus", str(corpus),
         "--target_top_k", "4", "--output", str(tmp_path / "model-targets")])
    targets = load_targets(tmp_path / "model-targets")
    assert read_info(targets).method == "model" and len(targets[0]["target_ids"]) == 4
    assert (tmp_path / "model-targets" / "corpus_prior.safetensors").is_file()
    cli(["explain", str(tmp_path / "model"), "a small boat", "-k", "3"])
    assert "a small boat" in capsys.readouterr().out


@pytest.mark.slow
def test_compare_trains_every_system_per_seed_and_pools_the_seeds(tmp_path, tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    compare = load_recipe_script("compare")
    flags = (f"--backbone {tiny_backbone_dir} --corpus {corpus} --per_device_train_batch_size 4 --max_train_samples 8 "
             f"--alignment_every 0")
    runs = tmp_path / "runs"
    table = compare.main(["--output_root", str(runs), "--steps", "2", "--extra_args", flags, "--quick", "6",
                          "--seeds", "42", "7"])
    trained = ["text2token-stage1", "text2token-stage2", "text2token-long", "simcse", "llm2vec"]
    assert set(table.index) == {f"{s}@seed{n}" for s in trained for n in (42, 7)} | {"untrained", "tfidf", "minilm"}
    assert table.loc["simcse@seed7", "train_wall_s"] > 0 and table.loc["llm2vec@seed42", "train_wall_s"] > 0
    # The recipe's own seed (42) trains in the output root, where the main job's folders are; others beside it.
    for root, seed in ((runs, 42), (runs / "seed-7", 7)):
        for folder in ("stage1", "stage2", "long/stage1", "long/stage2", "simcse", "llm2vec-mntp", "llm2vec"):
            record = json.loads((root / folder / "text2token_run.json").read_text())
            assert json.loads((root / folder / "training_complete.json").read_text())["global_step"] == 2
            assert record["training"]["seed"] == seed, folder
    # Different seeds train different weights.
    assert weights_digest(runs / "stage2") != weights_digest(runs / "seed-7" / "stage2")
    pooled = json.loads((runs / "compare" / "seeds.json").read_text())
    assert pooled["reference"] == "text2token-stage2"
    assert pooled["systems"]["simcse"]["seeds"] == 2 and pooled["systems"]["tfidf"]["seeds"] == 1
    runs_avg = [table.loc[f"simcse@seed{n}", "Average"] for n in (42, 7)]
    assert pooled["systems"]["simcse"]["mean"]["Average"] == pytest.approx(sum(runs_avg) / 2, abs=1e-3)
    assert pooled["systems"]["simcse"]["std"]["Average"] == pytest.approx(abs(runs_avg[0] - runs_avg[1]) / 2 ** 0.5,
                                                                           abs=1e-3)
    assert "± " in (runs / "compare" / "seeds.md").read_text()
    assert (runs / "compare" / "summary.png").is_file() and (runs / "compare" / "seeds.png").is_file()


@pytest.mark.parametrize("flags, message", [
    (["--loss", "simcse", "--targets", "some/folder"], "loss=simcse trains on plain text"),
    (["--loss", "mntp", "--targets", "some/folder"], "loss=mntp trains on plain text"),
    (["--target_method", "model", "--weighting", "idf"], "weighting='idf' applies to data-driven targets"),
    (["--target_temperature", "0.001"], "target_temperature applies to model-derived targets"),
    (["--pooling", "last", "--prompt", "{text}"], "last pooling reads the token after the prompt"),
    (["--stopwords", "no/such/words.txt"], "stopwords='no/such/words.txt': expected one of .*no such file"),
])
def test_conflicting_recipe_options_are_refused(flags, message):
    from text2token.arguments import check_recipe

    args = parse_recipe_args(RECIPE_TYPES, ["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), *flags])
    with pytest.raises(ValueError, match=f"conflicting options: .*{message}"):
        check_recipe(*args)


def test_model_derived_targets_need_a_trained_text2token_model(tmp_path, tiny_backbone_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    with pytest.raises(ValueError, match="is not one: train stage 1 first"):
        load_recipe_script("train").main(["--config", str(ROOT / "recipes/smollm2-135m/stage2.yaml"), "--backbone",
                                   str(tiny_backbone_dir), "--corpus", str(corpus), "--output_dir",
                                   str(tmp_path / "out"), "--max_train_samples", "4"])
