"""Two processes that take one output folder's lock at the same instant never both hold it: for fresh
folders, and for folders whose lock was left by a process that is gone (both race to take it over)."""

import json
import multiprocessing
import os
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
