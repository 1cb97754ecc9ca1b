"""benchmarks/gpu_smoke.sh: no GPU here, so its syntax is checked and its --dry-run (the same steps on the
CPU at tiny sizes, from a tiny random backbone with the embedded default's tokenizer) is run end to end.
The embedded default itself converts, trains and reloads in tests/test_backbones_embedded.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.sh"


def test_gpu_smoke_script_parses_and_refuses_unknown_arguments():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    refused = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert refused.returncode == 2 and "usage: bash benchmarks/gpu_smoke.sh [--dry-run]" in refused.stderr


@pytest.mark.slow
def test_gpu_smoke_dry_run_runs_every_step_on_the_cpu(tmp_path, tiny_backbone_dir):
    venv = str(Path(sys.executable).parents[1])  # the environment running the tests: the dry run skips set-up
    env = {**os.environ, "GPU_SMOKE_OUT": str(tmp_path / "smoke"), "TEXT2TOKEN_VENV": venv, "OMP_NUM_THREADS": "1",
           "GPU_SMOKE_BACKBONE": str(tiny_backbone_dir)}
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=2400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "==== gpu_smoke summary (DRY RUN on the CPU" in run.stdout
    rows = {row["step"]: row for row in (json.loads(line[6:]) for line in
                                         (tmp_path / "smoke" / "smoke.log").read_text().splitlines()
                                         if line.startswith("SMOKE "))}
    assert rows["convert"]["wall_s"] >= 0 and rows["convert"]["backbone"] == str(tiny_backbone_dir)
    for stage in ("stage1", "stage2"):  # each phase timed apart, on texts that fill the training length
        row = rows[stage]
        assert row["steps"] == 2 and row["pooling"] == "last" and row["gradient_checkpointing"] is True
        assert row["targets_s"] > 0 and row["train_s"] > 0 and row["save_s"] > 0
        assert row["mean_input_tokens"] == row["max_length"] == 16
    assert rows["stage1"]["target_pass_device"] is None and rows["stage2"]["target_pass_device"] == "cpu"
    for length in (64, 128):  # the evaluation loader placed the model; texts fill each length (512, 1024 on a GPU)
        row = rows[f"encode-{length}"]
        assert row["texts"] == 2 and row["texts_per_s"] > 0 and row["device"] == "cpu"
        assert row["mean_tokens"] == length and row["dtype"] == "bfloat16"
    assert rows["ddp"]["ddp_wrapped"] is True and rows["ddp"]["backend"] == "gloo" and rows["ddp"]["steps"] == 1
    assert rows["ddp"]["world_size"] == 2
    assert (tmp_path / "smoke" / "stage2" / "model.safetensors").is_file()
    assert "targets_s=" in run.stdout and "device=cpu" in run.stdout  # the summary prints phases and devices
