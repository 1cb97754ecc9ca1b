"""Two processes that take one output folder's lock at the same instant never both hold it: for fresh
folders, and for folders whose lock was left by a process that is gone (both race to take it over)."""

import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from text2token.output_lock import LOCK_FILE, OutputFolderLockedError, acquire_output_lock

ROUNDS = 200


def _race(folders, barrier, results):
    won = []
    for index, folder in enumerate(folders):
        barrier.wait()  # both processes start each round together
        try:
            acquire_output_lock(folder)
            won.append(index)
        except OutputFolderLockedError:
            pass
    results.put((os.getpid(), won))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale-lock-takeover"])
def test_two_processes_started_together_never_both_hold_a_folder(tmp_path, stale):
    folders = [tmp_path / f"run{i}" for i in range(ROUNDS)]
    dead = _dead_pid()
    for folder in folders:
        folder.mkdir()
        if stale:
            (folder / LOCK_FILE).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_race, args=(folders, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    (pid_a, won_a), (pid_b, won_b) = outcomes.items()
    both = sorted(set(won_a) & set(won_b))
    assert not both, f"both processes held the lock in {len(both)} of {ROUNDS} rounds (first: round {both[0]})"
    assert sorted(won_a + won_b) == list(range(ROUNDS)), "every round has exactly one holder"
    for index, folder in enumerate(folders):  # the lock names the process that won
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == (pid_a if index in won_a else pid_b)


@pytest.mark.slow
def test_two_target_builds_started_together_never_share_the_folder(tmp_path, tiny_backbone_dir):
    from launch_helpers import ROOT, launch_env
    from model_fixtures import SENTENCES

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 50))
    command = [sys.executable, "-m", "text2token.cli", "targets", "build", "--backbone", str(tiny_backbone_dir),
               "--corpus", str(corpus), "--output", str(tmp_path / "T")]
    for _ in range(2):
        processes = [subprocess.Popen(command, cwd=ROOT, env=launch_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [process.communicate(timeout=300)[0] for process in processes]
        codes = [process.returncode for process in processes]
        wrote = [i for i, out in enumerate(outputs) if re.search(r"Saved \d+ rows of data targets", out)]
        others = [i for i in range(2) if i not in wrote]
        assert len(wrote) == 1 and all("FileNotFoundError" not in out for out in outputs), outputs
        for i in others:  # refused while the other held the folder, or found the other's finished targets
            assert ("is in use by another run" in outputs[i] and codes[i] != 0) or \
                   ("Reusing the targets" in outputs[i] and codes[i] == 0), outputs[i][-2000:]
        assert (tmp_path / "T" / "text2token_targets.json").is_file()
        shutil.rmtree(tmp_path / "T")  # next round: both must build again
