"""One run per output folder: a lock file that names its holder.

Two runs writing one output folder would clear each other's staging folders and rotate each
other's checkpoints. The main process of a run takes `<output_dir>/.text2token.lock` (its pid and
host); a second run refuses, naming the folder and the holder. A lock whose process is gone (killed,
crashed) is taken over, so a rerun after SIGKILL needs no manual step.
"""

from __future__ import annotations

import atexit
import json
import os
import socket

LOCK_FILE = ".text2token.lock"


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
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {}  # half-written by a process killed while taking it: treat as stale


def acquire_output_lock(output_dir: str | os.PathLike) -> str:
    """Take the lock of `output_dir` for this process (re-entrant); returns the lock file's path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(os.fspath(output_dir), LOCK_FILE)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None:
                continue  # released meanwhile: try again
            if holder.get("pid") == me["pid"] and holder.get("host") == me["host"]:
                return path
            same_host = holder.get("host") in (None, me["host"])
            if isinstance(holder.get("pid"), int) and (not same_host or _alive(holder["pid"])):
                where = "" if same_host else f" on host {holder['host']}"
                raise OutputFolderLockedError(
                    f"output folder {output_dir} is in use by another run (pid {holder['pid']}{where}, lock file "
                    f"{path}): use another --output_dir, or wait for that run to end. If no such run exists, "
                    f"delete {path}") from None
            # Stale: its process is gone. Replace it atomically, then check that we won any race.
            tmp = f"{path}.{me['pid']}"
            with open(tmp, "w") as handle:
                json.dump(me, handle)
            os.replace(tmp, path)
            if _holder(path) == me:
                break
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise OutputFolderLockedError(f"could not take the lock {path} of output folder {output_dir}")
    atexit.register(release_output_lock, path)
    return path


def release_output_lock(path: str) -> None:
    """Remove the lock if this process holds it."""
    holder = _holder(path)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
