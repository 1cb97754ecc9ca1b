import json
from pathlib import Path

import pytest

from text2token import Text2TokenModel
from text2token.targets import load_targets, read_info
from text2token.arguments import DataArguments, ModelArguments, Text2TokenTrainingArguments, parse_recipe_args

from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[1]
RECIPE_TYPES = (ModelArguments, DataArguments, Text2TokenTrainingArguments)
TRAINING_RECIPES = sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate_configs")


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_parses(recipe):
    # use_cpu: bf16 recipes are for GPUs, and TrainingArguments checks the hardware it runs on.
    model_args, data_args, training_args = parse_recipe_args(RECIPE_TYPES, ["--config", str(recipe), "--use_cpu", "true"])
    assert training_args.learning_rate > 0 and model_args.lora_r > 0


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
    cli(["targets", "build", "--method", "data", "--backbone", str(tiny_backbone_dir), "--corpus", str(corpus),
         "--output", str(tmp_path / "data")])
    assert read_info(load_targets(tmp_path / "data")).method == "data"
    tiny_model.save_pretrained(tmp_path / "model")
    cli(["targets", "build", "--method", "model", "--backbone", str(tmp_path / "model"), "--corpus", str(corpus),
         "--top-k", "4", "--output", str(tmp_path / "model-targets")])
    targets = load_targets(tmp_path / "model-targets")
    assert read_info(targets).method == "model" and len(targets[0]["target_ids"]) == 4
    assert (tmp_path / "model-targets" / "corpus_prior.safetensors").is_file()
    cli(["explain", str(tmp_path / "model"), "a small boat", "-k", "3"])
    assert "a small boat" in capsys.readouterr().out


@pytest.mark.slow
def test_compare_trains_simcse_and_tabulates_every_system(tmp_path, tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    compare = load_recipe_script("compare")
    flags = (f"--backbone {tiny_backbone_dir} --corpus {corpus} --per_device_train_batch_size 4 --max_train_samples 8 "
             f"--alignment_every 0")
    table = compare.main(["--output_root", str(tmp_path / "runs"), "--steps", "2", "--extra_args", flags,
                          "--quick", "6"])
    assert set(table.index) == {"text2token-stage1", "text2token-stage2", "simcse", "untrained", "tfidf", "minilm"}
    assert table.loc["simcse", "train_wall_s"] > 0
    assert json.loads((tmp_path / "runs" / "simcse" / "training_complete.json").read_text())["global_step"] == 2
    assert (tmp_path / "runs" / "compare" / "summary.png").is_file()



@pytest.mark.parametrize("flags, message", [
    (["--objective", "simcse", "--targets", "some/folder"], "objective=simcse trains on plain text"),
    (["--target_method", "model", "--weighting", "idf"], "weighting='idf' applies to data-driven targets"),
    (["--target_temperature", "0.001"], "target_temperature applies to model-derived targets"),
    (["--pooling", "last", "--prompt", "{text}"], "last pooling reads the token after the prompt"),
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
