"""Launch real processes for the multi-process tests: `accelerate launch` with
recipes/accelerate_configs/cpu_ddp2.yaml (two gloo processes on the CPU), or one plain process, each
under a timeout that kills the whole process group (launcher and workers) and shows the log tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_DDP2 = ROOT / "recipes" / "accelerate_configs" / "cpu_ddp2.yaml"
# Short on purpose: the multi-process paths must never leave a rank waiting in a collective for longer
# than a training step (a long target build is waited for on the file system instead).
PROCESS_GROUP_TIMEOUT_S = 30


def launch_env(**extra: str) -> dict:
    """Single-threaded, with MKL's reproducible code path: results are compared bit for bit across
    processes, and a float that differs in its last bit flips near-tied tokens at temperature 1e-4.
    PYTHONPATH keeps conftest's network guard (sitecustomize) ahead of the repository."""
    python_path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    # A launched command behaves as the user's: one-line errors, not conftest's raising mode.
    user_env = {k: v for k, v in os.environ.items() if k != "TEXT2TOKEN_DEBUG"}
    return {**user_env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE",
            "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false",
            "TEXT2TOKEN_DDP_TIMEOUT": str(PROCESS_GROUP_TIMEOUT_S), "PYTHONPATH": python_path, **extra}


def command(script_args: list[str], num_processes: int = 2, module: bool = False) -> list[str]:
    """`accelerate launch --config_file cpu_ddp2.yaml [-m] ...` for N > 1 processes, else plain python."""
    if num_processes == 1:
        return [sys.executable, *(["-m"] if module else []), *script_args]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_DDP2),
            "--num_processes", str(num_processes), *(["-m"] if module else []), *script_args]


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run(cmd: list[str], *, timeout: float, env: dict | None = None, check: bool = True,
        log: Path | None = None) -> tuple[int, str]:
    """Run `cmd` in its own process group; return (exit code, combined output). On timeout the whole
    group is killed and an AssertionError shows the output's tail."""
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"launch-{os.getpid()}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env or launch_env(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise AssertionError(f"timed out after {timeout} s: {' '.join(cmd)}\n{tail(log)}") from None
    output = log.read_text(errors="replace")
    if check and code != 0:
        raise AssertionError(f"exit code {code}: {' '.join(cmd)}\n{tail(log)}")
    return code, output


def tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:]


def start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start `cmd` in its own process group (for a test that kills the group)."""
    handle = open(log, "wb")
    process = subprocess.Popen(cmd, cwd=ROOT, env=env or launch_env(), stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log_handle = handle
    return process


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and every worker it started (the whole process group)."""
    _kill_group(process)
    process.log_handle.close()
