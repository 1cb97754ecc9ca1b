"""Every out-of-range value is refused before any work starts, in one line naming the option and its
range; a partial LoRA dict is completed from the defaults."""

from pathlib import Path

import pytest
import torch

from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("flags, named", [
    (["--max_steps", "-5"], r"max_steps=-5: must be a positive number of steps, or -1"),
    (["--max_steps", "0"], r"max_steps=0: must be a positive number of steps"),
    (["--save_steps", "0"], r"save_steps=0(\.0)?: must be > 0 with save_strategy=steps"),
    (["--save_steps", "-3"], r"save_steps=-3(\.0)?: must be > 0 with save_strategy=steps"),
    (["--learning_rate", "-0.001"], r"learning_rate=-0.001: must be a number >= 0"),
    (["--per_device_train_batch_size", "0"], r"per_device_train_batch_size=0: must be an integer >= 1"),
    (["--lora_r", "0"], r"lora_r=0: must be an integer >= 1"),
    (["--lora_dropout", "1.5"], r"lora_dropout=1.5: must be a number >= 0 and < 1"),
    (["--report_to", "tensorbored"], r"report_to='tensorbored': must be one of"),
    (["--target_method", "model", "--target_temperature", "1e-50"], r"target_temperature=1e-50: must be a finite"),
    (["--target_method", "model", "--target_temperature", "inf"], r"target_temperature=inf: must be a finite"),
    (["--target_shard_size", "0"], r"target_shard_size=0: must be an integer >= 1"),
])
def test_a_bad_training_value_is_refused_when_the_recipe_is_parsed(flags, named, tmp_path, monkeypatch):
    # parse_args is the first thing `train` does: nothing is loaded, no target is built before it.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=named):
        load_recipe_script("train").parse_args(["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"),
                                                "--output_dir", str(tmp_path / "out"), *flags])
    assert not (tmp_path / "out").exists()


def test_an_empty_recipe_is_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    with pytest.raises(ValueError, match=r"empty.yaml: the recipe is empty"):
        load_recipe_script("train").parse_args(["--config", str(empty)])


@pytest.mark.parametrize("flags, named", [
    (["--target_shard_size", "0"], r"target_shard_size=0: must be an integer >= 1"),
    (["--target_method", "model", "--target_temperature", "1e-50"], r"target_temperature=1e-50: must be a finite number"),
    (["--target_method", "model", "--target_temperature", "inf"], r"target_temperature=inf: must be a finite number"),
    (["--max_train_samples", "0"], r"max_train_samples=0: must be an integer >= 1"),
])
def test_a_bad_target_value_is_refused_before_anything_is_loaded(flags, named, tmp_path):
    from text2token.cli import main

    with pytest.raises(ValueError, match=named):
        main(["targets", "build", "--backbone", str(tmp_path / "nothing-here"), "--corpus",
              str(tmp_path / "no-corpus.txt"), "--output", str(tmp_path / "T"), *flags])
    assert not (tmp_path / "T").exists()


def test_a_temperature_that_overflows_float32_is_refused_by_the_builder(tiny_model):
    from text2token.targets.model_derived import targets_from_embeddings

    h0 = torch.randn(3, tiny_model.config.lm_config.hidden_size)
    with pytest.raises(ValueError, match=r"temperature=1e-45: the targets overflow"):
        targets_from_embeddings(tiny_model, h0, temperature=1e-45, top_k=4)


def test_a_partial_lora_dict_is_completed_and_saves(tiny_model, tmp_path):
    tiny_model.merge_lora()  # the fixture comes with the default adapter
    tiny_model.add_lora({"r": 4, "lora_alpha": 8})
    assert tiny_model.config.lora["lora_dropout"] == 0.05 and tiny_model.config.lora["r"] == 4
    tiny_model.save_pretrained(tmp_path / "unmerged")
    tiny_model.save_pretrained(tmp_path / "merged", merge_lora=True)
    from text2token.hub import render_model_card

    render_model_card(tiny_model.config, repo_id="x", lora_merged=False)


@pytest.mark.parametrize("lora, named", [({"r": 0}, r"lora: r=0"), ({"lora_dropout": 1.0}, r"lora: lora_dropout=1.0")])
def test_an_out_of_range_lora_dict_is_refused(tiny_model, lora, named):
    tiny_model.merge_lora()
    with pytest.raises(ValueError, match=named):
        tiny_model.add_lora(lora)


def test_encode_and_explain_refuse_out_of_range_lengths_and_k(tiny_model):
    from text2token.explain import topk_tokens

    with pytest.raises(ValueError, match=r"max_length=-1: must be an integer >= 1"):
        tiny_model.encode(SENTENCES[:2], max_length=-1)
    with pytest.raises(ValueError, match=r"k=-1: must be an integer >= 1"):
        tiny_model.explain(SENTENCES[:2], k=-1)
    with pytest.raises(ValueError, match=r"k=-1: must be an integer >= 1"):
        topk_tokens(tiny_model, SENTENCES[:2], k=-1)


def test_a_bad_stage2_value_stops_the_pipeline_before_stage1_trains(tmp_path):
    with pytest.raises(ValueError, match=r"lora_dropout=1.5: must be a number >= 0 and < 1"):
        load_recipe_script("pipeline").main(["--output_root", str(tmp_path / "runs"), "--skip_eval",
                                             "--stage2_args", "--lora_dropout 1.5"])
    assert not (tmp_path / "runs").exists()
