"""Staging folders the library can prove it made, so that it deletes only those.

A folder written aside and renamed into place when complete (a target dataset, an export) is staged
under `.<name>.staging-<unique>` beside its final place, with a marker file naming the process that
made it. Cleaning up after a killed save removes only folders that match that name *and* hold the
marker of a process that is gone: a user's `.<name>.backup/` beside them is never touched.

Staging folders follow the umask like any folder the user makes (`tempfile.mkdtemp` would make
them, and so the published folder, 0700).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path

MARKER_FILE = ".text2token-staging"
STAGING_INFIX = ".staging-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike) -> None:
    """Give a folder the mode a plain `mkdir` would have given it."""
    os.chmod(path, 0o777 & ~_umask())


def staging_prefix(final: Path) -> str:
    return f".{final.name}{STAGING_INFIX}"


def make_staging(final: str | os.PathLike) -> Path:
    """A new, empty staging folder beside `final`, holding the library's marker."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f"{staging_prefix(final)}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    follow_umask(staging)  # mkdir applies the umask already; explicit, as the folder is published as it is
    (staging / MARKER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                   "for": final.name}))
    return staging


def drop_marker(staging: Path) -> None:
    """Remove the marker before the staging folder is published under its final name."""
    (Path(staging) / MARKER_FILE).unlink(missing_ok=True)


def _made_by_a_gone_process(folder: Path, final_name: str) -> bool:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False  # no marker of ours: not ours to delete
    if not isinstance(marker, dict) or marker.get("for") != final_name:
        return False
    pid = marker.get("pid")
    if marker.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Remove the staging folders of `final` left by killed saves (ours by name and marker, their
    process gone); returns what was removed."""
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for candidate in final.parent.glob(f"{staging_prefix(final)}*"):
        if candidate.is_dir() and not candidate.is_symlink() and _made_by_a_gone_process(candidate, final.name):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed
