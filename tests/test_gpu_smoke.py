"""benchmarks/gpu_smoke.sh: no GPU here, so its syntax is checked and its --dry-run (the same steps on the
CPU at tiny sizes) is run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.sh"


def test_gpu_smoke_script_parses_and_refuses_unknown_arguments():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    refused = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert refused.returncode == 2 and "usage: bash benchmarks/gpu_smoke.sh [--dry-run]" in refused.stderr


@pytest.mark.slow
def test_gpu_smoke_dry_run_runs_every_step_on_the_cpu(tmp_path):
    venv = str(Path(sys.executable).parents[1])  # the environment running the tests: the dry run skips set-up
    env = {**os.environ, "GPU_SMOKE_OUT": str(tmp_path / "smoke"), "TEXT2TOKEN_VENV": venv, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "==== gpu_smoke summary (DRY RUN on the CPU" in run.stdout
    rows = {row["step"]: row for row in (json.loads(line[6:]) for line in
                                         (tmp_path / "smoke" / "smoke.log").read_text().splitlines()
                                         if line.startswith("SMOKE "))}
    assert rows["stage1"]["steps"] == 2 and rows["stage2"]["steps"] == 2
    assert rows["encode"]["texts"] == 64 and rows["encode"]["texts_per_s"] > 0
    assert rows["ddp"]["ddp_wrapped"] is True and rows["ddp"]["backend"] == "gloo" and rows["ddp"]["steps"] == 1
    assert (tmp_path / "smoke" / "stage2" / "model.safetensors").is_file()
