"""Experiment tracking and the run report: the KL loss, the alignment metrics and the evaluation table
reach the `report_to` trackers (TensorBoard event files, trackio's local store), and a pipeline run ends
with report.md, its curves and its table."""

import json
from pathlib import Path

import pytest

from text2token.tracking import log_to_trackers, table_metrics

from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[1]
ALIGN = ("train/align_hit@10", "train/align_local", "train/align_global")


def _scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the TensorBoard event files under `run_dir/runs/`: {tag: {step: value}}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, dict[int, float]] = {}
    for events in sorted((run_dir / "runs").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, {}).update({e.step: e.value for e in accumulator.Scalars(tag)})
    return found


def _last_state(stage: Path) -> dict:
    last = max(stage.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return json.loads((last / "trainer_state.json").read_text())


def test_pipeline_logs_to_tensorboard_and_ends_with_a_report(tmp_path, tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    common = "--per_device_train_batch_size 4 --save_steps 2 --logging_steps 1 --alignment_every 1 --alignment_texts 4"
    argv = ["--output_root", str(tmp_path / "runs"), "--steps", "2", "--eval_quick", "6",
            "--stage1_args", f"--backbone {tiny_backbone_dir} --corpus {corpus} {common}",
            "--stage2_args", f"--corpus {corpus} --max_train_samples 8 {common}"]
    summary = load_recipe_script("pipeline").main(argv)  # the smollm2 YAMLs: report_to tensorboard
    root = tmp_path / "runs"

    for stage in ("stage1", "stage2"):  # the KL loss and the alignment metrics, step by step, as logged
        scalars = _scalars(root / stage)
        history = [e for e in _last_state(root / stage)["log_history"] if e.get("step", 0) > 0]
        assert {"train/loss", *ALIGN} <= set(scalars), f"{stage}: {sorted(scalars)}"
        for entry in history:
            if "loss" in entry:
                assert scalars["train/loss"][entry["step"]] == pytest.approx(entry["loss"], rel=1e-6)
            if "align_local" in entry:
                assert scalars["train/align_local"][entry["step"]] == pytest.approx(entry["align_local"], rel=1e-6)
        assert set(scalars["train/align_global"]) == {1, 2}

    # The evaluation table, at stage 2's last step, under eval/<system>/<column>.
    scalars = _scalars(root / "stage2")
    for system, row in summary["table"].items():
        assert scalars[f"eval/{system}/Average"] == {2: pytest.approx(row["Average"], rel=1e-6)}

    report = Path(summary["report"])
    assert report == root / "report.md"
    text = report.read_text()
    for section in ("## Settings", "## Training curves", "## What the embeddings decode to", "## Evaluation"):
        assert section in text
    for stage in ("stage1", "stage2"):
        png = root / "report_figures" / f"{stage}-curves.png"
        assert png.stat().st_size > 1000 and f"](report_figures/{stage}-curves.png)" in text
    assert "](eval/summary.png)" in text and (root / "eval" / "summary.png").is_file()
    assert "| text2token-stage2 |" in text and "| untrained |" in text
    assert "Photosynthesis" in text and "| model.pooling | mean | mean |" in text
    # The shipped recipes are named as a user types them, not by this machine's absolute path.
    assert "- `stage1`: recipes/smollm2-135m/stage1.yaml" in text and str(ROOT) not in text.split("## Training")[0]


def test_trackio_and_tensorboard_together_receive_the_loss_the_alignment_and_the_table(tmp_path, tiny_backbone_dir):
    pytest.importorskip("trackio")
    from trackio.sqlite_storage import SQLiteStorage

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 6))
    out, project = tmp_path / "run", f"t2t-{tmp_path.name}"
    load_recipe_script("train").main([
        "--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), "--backbone", str(tiny_backbone_dir),
        "--corpus", str(corpus), "--output_dir", str(out), "--per_device_train_batch_size", "4", "--max_steps", "3",
        "--save_steps", "3", "--logging_steps", "1", "--warmup_steps", "0", "--alignment_every", "1",
        "--alignment_texts", "4", "--report_to", "trackio", "tensorboard", "--project", project, "--run_name", "stage1"])
    table = table_metrics({"tiny": {"Average": 42.5, "note": "text"}})
    assert log_to_trackers(out, table, step=3) == ["trackio", "tensorboard"]

    scalars = _scalars(out)  # the second tracker got the same stream
    assert set(scalars["train/loss"]) == {1, 2, 3} and scalars["eval/tiny/Average"] == {3: 42.5}

    logs = SQLiteStorage.get_logs(project, "stage1")  # trackio's local store: no server, no network
    assert sum("train/loss" in e for e in logs) == 3
    assert sum("train/align_hit@10" in e for e in logs) == 3
    assert [e["eval/tiny/Average"] for e in logs if "eval/tiny/Average" in e] == [42.5]


@pytest.mark.parametrize("flags, expected", [
    (["--report_to", "tensorboard", "trackio"], ["tensorboard", "trackio"]),
    (["--report_to", "tensorboard,trackio"], ["tensorboard", "trackio"]),
    (["--report_to", "none"], []),
    ([], ["tensorboard"]),  # the recipe's own
])
def test_report_to_takes_several_trackers(flags, expected):
    from text2token.commands.train import parse_args

    _, _, training_args = parse_args(["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), *flags])
    assert training_args.report_to == expected


def test_table_metrics_keeps_finite_numbers_only():
    metrics = table_metrics({"a": {"Average": 50.0, "max_tokens": 512, "bad": float("nan"), "label": "x",
                                   "flag": True, "missing": None}})
    assert metrics == {"eval_a/Average": 50.0, "eval_a/max_tokens": 512.0}
