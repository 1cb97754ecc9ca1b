"""SIGKILL a real training run and a real target build at a random point, rerun the same command,
and compare with an uninterrupted run. Slow: each case starts several Python processes."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from text2token.targets import load_targets

from model_fixtures import SENTENCES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _kill_when(command, ready, timeout=300):
    """Start `command`, SIGKILL it soon after `ready()` holds; True if it was killed mid-run."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.time() + timeout
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return killed


def _run(command):
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   env={**os.environ, "PYTHONHASHSEED": "0"})


def _losses(output_dir):
    import json

    state = json.loads((Path(output_dir) / "checkpoint-12" / "trainer_state.json").read_text())
    return [(log["step"], round(log["loss"], 4)) for log in state["log_history"] if "loss" in log]


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path, tiny_backbone_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} number {i}" for i in range(12) for s in SENTENCES))

    def command(out):
        return [sys.executable, "recipes/train.py", "--config", "recipes/smollm2-135m/stage1.yaml",
                "--backbone", str(tiny_backbone_dir), "--corpus", str(corpus), "--output_dir", str(out),
                "--max_steps", "12", "--save_steps", "2", "--per_device_train_batch_size", "4", "--logging_steps", "1",
                "--warmup_steps", "0", "--alignment_every", "0", "--learning_rate", "1e-3", "--seed", "7"]

    _run(command(tmp_path / "straight"))
    interrupted = tmp_path / "interrupted"
    step = random.choice([2, 4, 6])
    killed = _kill_when(command(interrupted), lambda: (interrupted / f"checkpoint-{step}").is_dir())
    assert killed, "the run finished before it could be killed"
    assert not (interrupted / "training_complete.json").exists()
    _run(command(interrupted))

    assert _losses(interrupted) == _losses(tmp_path / "straight")
    final, reference = load_file(interrupted / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    assert final.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(final[key], reference[key], rtol=0, atol=1e-6)


def test_killed_model_derived_build_resumes_to_the_same_dataset(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} variant {i}" for i in range(1500) for s in SENTENCES))

    def command(out):
        return [sys.executable, "-m", "text2token.cli", "targets", "build", "--method", "model", "--backbone",
                str(tmp_path / "model"), "--corpus", str(corpus), "--top-k", "8", "--shard-size", "300",
                "--output", str(out)]

    _run(command(tmp_path / "straight"))
    out = tmp_path / "interrupted"
    work = Path(f"{out}.work")
    killed = _kill_when(command(out), lambda: len(list(work.glob("h0-*.safetensors"))) >= 3)
    assert killed, "the build finished before it could be killed"
    assert not out.exists(), "no half-written dataset under the final name"
    _run(command(out))
    assert load_targets(out).to_dict() == load_targets(tmp_path / "straight").to_dict()
