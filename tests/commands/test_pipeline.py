"""A resumed run cannot silently change its recipe or targets; a stage started from stale weights retrains."""

import json
from pathlib import Path

import pytest

from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def first_run(tmp_path, tiny_backbone_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    common = ["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), "--backbone", str(tiny_backbone_dir),
              "--corpus", str(corpus), "--output_dir", str(tmp_path / "run"), "--per_device_train_batch_size", "4",
              "--save_steps", "2", "--logging_steps", "1", "--warmup_steps", "0", "--alignment_every", "0"]
    train = load_recipe_script("train")
    train.main(common + ["--max_steps", "2"])
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    return train, common


@pytest.mark.parametrize("change, named", [
    (["--learning_rate", "0.00123"], r"training.learning_rate: [0-9.e-]+ -> 0.00123"),
    (["--target_top_k", "3"], r"targets_key: '[0-9a-f]{16}' -> '[0-9a-f]{16}'"),
    (["--lora_r", "7"], r"model.lora_r: \d+ -> 7"),
])
def test_resuming_with_another_recipe_or_targets_is_refused(first_run, tmp_path, change, named):
    train, common = first_run
    targets_before = (tmp_path / "run" / "targets" / "text2token_targets.json").read_text()
    with pytest.raises(ValueError, match=r"holds checkpoint-2, trained with other settings than this run asks for: "
                                         r".*" + named):
        train.main(common + ["--max_steps", "4"] + change)
    assert (tmp_path / "run" / "targets" / "text2token_targets.json").read_text() == targets_before, \
        "the refused resume must leave the targets the checkpoint trained on"


def test_pipeline_retrains_a_stage_started_from_other_weights(tmp_path):
    pipeline = load_recipe_script("pipeline")
    stage = tmp_path / "stage2"
    stage.mkdir()
    (stage / "checkpoint-2").mkdir()
    config = tmp_path / "stage2.yaml"
    config.write_text(f"output_dir: {stage}\n")
    calls = []

    def fake_train(model_args, data_args, training_args):
        calls.append(training_args.output_dir)
        (stage / "training_complete.json").write_text(json.dumps({"global_step": 2, "backbone_digest": "new"}))

    (stage / "training_complete.json").write_text(json.dumps({"global_step": 2, "backbone_digest": "old"}))
    pipeline.run_stage(config, started_from="old", train_fn=fake_train)
    assert calls == [], "a complete stage from the same weights is skipped"
    summary = pipeline.run_stage(config, started_from="new", train_fn=fake_train)
    assert calls == [str(stage)] and summary["backbone_digest"] == "new"
    assert not (stage / "checkpoint-2").exists(), "checkpoints of the stale stage must not be resumed"
    pipeline.run_stage(config, started_from="new", train_fn=fake_train)
    assert len(calls) == 1


@pytest.mark.parametrize("change, named", [
    (["--max_train_samples", "6"], r"data.max_train_samples: None -> 6"),
    (["--max_steps", "3"], r"training.max_steps: 2 -> 3"),
    (["--seed", "7"], r"training.seed: 42 -> 7"),
])
def test_a_finished_stage_is_reused_only_for_the_recipe_that_trained_it(first_run, tmp_path, change, named):
    from text2token.commands.pipeline import run_stage

    train, common = first_run  # a finished 2-step stage
    marker = tmp_path / "run" / "training_complete.json"
    before = marker.read_text()
    assert run_stage(Path(common[1]), common[2:] + ["--max_steps", "2"])["global_step"] == 2  # same recipe: reused
    with pytest.raises(ValueError, match=r"run is complete, but was trained with other settings than this recipe "
                                         r"asks for: .*" + named + r".*Use another output folder"):
        run_stage(Path(common[1]), common[2:] + ["--max_steps", "2"] + change)
    assert marker.read_text() == before


def test_a_stage_finished_before_markers_recorded_the_recipe_is_checked_by_its_steps(first_run, tmp_path):
    import json

    from text2token.commands.pipeline import run_stage

    _, common = first_run
    marker = tmp_path / "run" / "training_complete.json"
    old = json.loads(marker.read_text())
    old.pop("recipe")
    marker.write_text(json.dumps(old))  # as a marker written by an older text2token
    assert run_stage(Path(common[1]), common[2:] + ["--max_steps", "2"])["global_step"] == 2
    with pytest.raises(ValueError, match=r"run is complete after 2 steps, but this recipe asks for 4"):
        run_stage(Path(common[1]), common[2:] + ["--max_steps", "4"])
