"""One run per output folder: a lock file that names its holder.

Two runs writing one output folder would clear each other's staging folders and rotate each
other's checkpoints. The main process of a run takes a lock file (by default
`<output_dir>/.text2token.lock`, holding its pid and host); a second run refuses, naming the folder
and the holder. A lock whose process is gone (killed, crashed) is taken over, so a rerun after
SIGKILL needs no manual step.

Taking the lock is one critical section under `flock` on the lock's parent folder: reading the
holder, deciding it is stale and writing ours cannot interleave with another process doing the same.
The lock file itself is written whole under a unique name, then renamed into place, so a reader never
sees it half-written; a lock that cannot be read (from an older version, a full disk) is never taken
over silently: it is named in the refusal.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import socket

LOCK_FILE = ".text2token.lock"

_held: set[str] = set()


class OutputFolderLockedError(RuntimeError):
    """Another live process holds the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder(path: str) -> dict | None:
    """The lock's content; None when there is no lock, {} when it cannot be read."""
    try:
        with open(path) as handle:
            holder = json.load(handle)
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname()}


@contextlib.contextmanager
def _exclusive(folder: str):
    """Hold `flock` on `folder` (a directory) for a short critical section."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _write_whole(path: str, value: dict) -> None:
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def acquire_output_lock(output_dir: str | os.PathLike, lock_path: str | os.PathLike | None = None) -> str:
    """Take the lock of `output_dir` for this process (re-entrant); returns the lock file's path.
    `lock_path`: where the lock lives when not inside the folder (a folder that is replaced whole by a
    rename, like a target dataset, keeps its lock beside it)."""
    output_dir = os.fspath(output_dir)
    path = os.fspath(lock_path) if lock_path is not None else os.path.join(output_dir, LOCK_FILE)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    me = _me()
    with _exclusive(os.path.dirname(os.path.abspath(path))):
        holder = _holder(path)
        if holder is not None and not (holder.get("pid") == me["pid"] and holder.get("host") == me["host"]):
            pid, host = holder.get("pid"), holder.get("host")
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise OutputFolderLockedError(
                    f"output folder {output_dir} has a lock file {path} that names no process: if no run is "
                    f"using this folder, delete {path}")
            same_host = host in (None, me["host"])
            if not same_host or _alive(pid):
                where = "" if same_host else f" on host {host}"
                raise OutputFolderLockedError(
                    f"output folder {output_dir} is in use by another run (pid {pid}{where}, lock file "
                    f"{path}): use another output folder, or wait for that run to end. If no such run exists, "
                    f"delete {path}")
            # Stale: its process is gone, and no other process can decide the same meanwhile.
        if holder != me:
            _write_whole(path, me)
    if path not in _held:
        _held.add(path)
        atexit.register(release_output_lock, path)
    return path


def release_output_lock(path: str) -> None:
    """Remove the lock if this process holds it."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return
    with _exclusive(parent):
        if _holder(path) == _me():
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    _held.discard(path)
