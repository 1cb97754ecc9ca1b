"""SIGTERM (what a scheduler sends before it kills a job) mid-run: the trainer finishes the step, saves
a checkpoint at it, releases the lock and exits non-zero saying how to resume; the rerun resumes."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launch_helpers import launch_env
from model_fixtures import SENTENCES

ROOT = Path(__file__).resolve().parents[1]


def _train(tmp_path, backbone, max_steps):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    return [sys.executable, "-m", "text2token.cli", "train", "--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"),
            "--backbone", str(backbone), "--corpus", str(corpus), "--output_dir", str(tmp_path / "out"),
            "--max_steps", str(max_steps), "--save_steps", "1000", "--logging_steps", "1",
            "--per_device_train_batch_size", "2", "--warmup_steps", "0", "--alignment_every", "0",
            "--disable_tqdm", "true"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_saves_a_checkpoint_at_the_current_step_and_the_rerun_resumes(tmp_path, tiny_backbone_dir,
                                                                                       signum):
    log = tmp_path / "first.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(_train(tmp_path, tiny_backbone_dir, 10_000), cwd=ROOT, env=launch_env(),
                                   stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while log.read_text(errors="replace").count("'loss'") < 3:  # a few steps have run
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            process.send_signal(signum)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text(errors="replace")
    assert code == 128 + signum, text[-3000:]
    stopped = re.search(r"stopped by SIG\w+ after step (\d+): the state is saved in .*checkpoint-\1\. Run the same "
                        r"command again to resume from it", text)
    assert stopped, text[-3000:]
    step = int(stopped.group(1))
    out = tmp_path / "out"
    assert json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())["global_step"] == step
    assert not (out / ".text2token.lock").exists(), "the lock is released"
    assert not (out / "training_complete.json").exists(), "a stopped run is not complete"

    rerun = subprocess.run(_train(tmp_path, tiny_backbone_dir, step + 2), cwd=ROOT, env=launch_env(),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"Resuming from {out}/checkpoint-{step}" in rerun.stdout + rerun.stderr
    assert json.loads((out / "training_complete.json").read_text())["global_step"] == step + 2
