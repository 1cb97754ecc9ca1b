"""SIGKILL a real training run and a real target build at a random point, or in the middle of a save
(half-written optimizer state, a complete checkpoint not yet renamed into place, a final model half
published), rerun the same command, and compare with an uninterrupted run. Slow: each case starts
several Python processes.

The random choices come from one seed, printed and shown in every failure message; rerun a failure
with TEXT2TOKEN_CRASH_SEED=<seed>.

Results are compared bit for bit across processes, so every process runs in `launch_env()`."""

import hashlib
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

from launch_helpers import ROOT, launch_env
from model_fixtures import SENTENCES

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("TEXT2TOKEN_CRASH_SEED") or random.SystemRandom().randrange(2**31))
RNG = random.Random(SEED)
ENV = launch_env()


@pytest.fixture(autouse=True)
def _show_seed():
    print(f"crash tests: seed {SEED} (rerun with TEXT2TOKEN_CRASH_SEED={SEED})")  # shown with a failure's output

# Runs a recipe script with a kill point planted in the save path: TEXT2TOKEN_KILL_AT names it.
#   write:<file>:<checkpoint>  half of <file> written into the staged <checkpoint>, then SIGKILL
#   publish:<checkpoint>       the staged checkpoint is complete; SIGKILL instead of renaming it into place
#   final:config.json          the final save has moved its weights in; SIGKILL before config.json follows
KILL_DURING_SAVE = """
import io, os, runpy, signal, sys
import torch

point = os.environ["TEXT2TOKEN_KILL_AT"].split(":")
real_replace, real_save = os.replace, torch.save

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst, *args, **kwargs):
    src, dst = os.fspath(src), os.fspath(dst)
    if point[0] == "publish" and os.path.basename(dst) == point[1] and ".checkpoint-staging" in src:
        die()
    if point[0] == "final" and os.path.basename(dst) == point[1] and ".final-staging" in src:
        die()
    return real_replace(src, dst, *args, **kwargs)

def save(obj, f, *args, **kwargs):
    if point[0] == "write" and isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if os.path.basename(path) == point[1] and os.path.basename(os.path.dirname(path)) == point[2]:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            with open(path, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            die()
    return real_save(obj, f, *args, **kwargs)

os.replace, torch.save = replace, save
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _kill_when(command, ready, before, timeout=300):
    """Start `command`; SIGKILL it at a random moment after `ready()` holds and at the latest when
    `before()` does (a fixed delay alone can outlast a fast run); True if it was killed mid-run."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + timeout
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    kill_at = time.time() + RNG.uniform(0.0, 0.3)
    while time.time() < kill_at and not before() and process.poll() is None:
        time.sleep(0.002)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return killed


def _run(command):
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)


def _losses(output_dir):
    import json

    state = json.loads((Path(output_dir) / "checkpoint-12" / "trainer_state.json").read_text())
    return [(log["step"], round(log["loss"], 4)) for log in state["log_history"] if "loss" in log]


@pytest.fixture(scope="module")
def training(tmp_path_factory, real_tokenizer):
    """The training command of these tests, and its uninterrupted run (shared by the cases)."""
    from model_fixtures import save_tiny_backbone

    root = tmp_path_factory.mktemp("crash-training")
    backbone = save_tiny_backbone(root / "backbone", real_tokenizer)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"{s} number {i}" for i in range(12) for s in SENTENCES))

    def command(out):
        return ["recipes/train.py", "--config", "recipes/smollm2-135m/stage1.yaml",
                "--backbone", str(backbone), "--corpus", str(corpus), "--output_dir", str(out),
                "--max_steps", "12", "--save_steps", "2", "--per_device_train_batch_size", "4", "--logging_steps", "1",
                "--warmup_steps", "0", "--alignment_every", "0", "--learning_rate", "1e-3", "--seed", "7"]

    straight = root / "straight"
    _run([sys.executable, *command(straight)])
    return command, straight


def _assert_same_result(interrupted, straight, context):
    assert _losses(interrupted) == _losses(straight), context
    final, reference = load_file(interrupted / "model.safetensors"), load_file(straight / "model.safetensors")
    assert final.keys() == reference.keys(), context
    for key in reference:
        torch.testing.assert_close(final[key], reference[key], rtol=0, atol=1e-6, msg=lambda m: f"{context}: {m}")


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path, training):
    command, straight = training
    interrupted = tmp_path / "interrupted"
    step = RNG.choice([2, 4, 6])
    context = f"seed {SEED}, killed after checkpoint-{step} appeared, before checkpoint-{step + 2} did"
    killed = _kill_when([sys.executable, *command(interrupted)], lambda: (interrupted / f"checkpoint-{step}").is_dir(),
                        before=lambda: (interrupted / f"checkpoint-{step + 2}").is_dir())
    assert killed, f"the run finished before it could be killed ({context})"
    assert not (interrupted / "training_complete.json").exists()
    _run([sys.executable, *command(interrupted)])
    _assert_same_result(interrupted, straight, context)


@pytest.mark.parametrize("where", ["write", "publish", "final"])
def test_a_kill_during_a_save_resumes_to_the_uninterrupted_result(tmp_path, training, where):
    command, straight = training
    interrupted = tmp_path / "interrupted"
    checkpoint = f"checkpoint-{RNG.choice([2, 4, 6, 8])}"
    kill_at = {"write": f"write:{RNG.choice(['optimizer.pt', 'scheduler.pt'])}:{checkpoint}",
               "publish": f"publish:{checkpoint}", "final": "final:config.json"}[where]
    context = f"seed {SEED}, TEXT2TOKEN_KILL_AT={kill_at}"
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, *command(interrupted)], cwd=ROOT,
                            env={**ENV, "TEXT2TOKEN_KILL_AT": kill_at},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert killed.returncode == -signal.SIGKILL, f"{context}: the kill point was not reached\n{killed.stderr[-2000:]}"
    # The kill landed mid-save: nothing half-written is visible under a final name.
    if where == "final":
        assert (interrupted / "checkpoint-12").is_dir() and not (interrupted / "config.json").exists(), context
    else:
        assert (interrupted / ".checkpoint-staging" / checkpoint).is_dir(), context
        assert not (interrupted / checkpoint).exists(), context
    assert not (interrupted / "training_complete.json").exists()
    _run([sys.executable, *command(interrupted)])
    _assert_same_result(interrupted, straight, context)
    assert not (interrupted / ".checkpoint-staging").exists() and not (interrupted / ".final-staging").exists()


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("h0-*.safetensors"))}


def _file_ids(folder: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each shard: a shard written again gets new ones."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("h0-*.safetensors")}


def _assert_same_targets(resumed, straight, context: str) -> None:
    """Column by column, naming the first differing row (a whole-dict diff of 6,000 rows hides it)."""
    assert resumed.column_names == straight.column_names, context
    for column in straight.column_names:
        a, b = resumed[column], straight[column]
        assert len(a) == len(b), f"{context}: {column} has {len(a)} rows, {len(b)} in the uninterrupted build"
        differing = [row for row, (x, y) in enumerate(zip(a, b)) if x != y]
        assert not differing, (f"{context}: {column} differs in {len(differing)} rows, first row {differing[0]}: "
                               f"{a[differing[0]]} != {b[differing[0]]}")


def test_killed_model_derived_build_resumes_to_the_same_dataset(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model", merge_lora=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{s} variant {i}" for i in range(1500) for s in SENTENCES))

    def command(out):
        return [sys.executable, "-m", "text2token.cli", "targets", "build", "--target_method", "model", "--backbone",
                str(tmp_path / "model"), "--corpus", str(corpus), "--target_top_k", "8", "--target_shard_size", "300",
                "--output", str(out)]

    _run(command(tmp_path / "straight"))
    out = tmp_path / "interrupted"
    work = Path(f"{out}.work")
    killed = _kill_when(command(out), lambda: len(list(work.glob("h0-*.safetensors"))) >= 3,
                        before=lambda: len(list(work.glob("h0-*.safetensors"))) >= 6)
    assert killed, "the build finished before it could be killed"
    assert not out.exists(), "no half-written dataset under the final name"
    before = _file_ids(work)
    context = f"seed {SEED}, killed after {len(before)} of 20 shards"
    _run(command(out))
    after = _digests(work)
    # Resumed, not redone: the shards written before the kill are the same files, never rewritten.
    assert {name: ids for name, ids in _file_ids(work).items() if name in before} == before, context
    assert after == _digests(Path(f"{tmp_path / 'straight'}.work")), f"{context}: h0 shards differ"
    _assert_same_targets(load_targets(out), load_targets(tmp_path / "straight"), context)
