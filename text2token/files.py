"""Files: reading user-supplied data so that a bad file is named, not buried in a library traceback;
writing atomically."""

from __future__ import annotations

import os
from pathlib import Path

import datasets


def read_or_name_the_file(load, path: Path) -> datasets.Dataset:
    """Run `load`; a corrupt or truncated file fails with its name instead of a deep Arrow traceback."""
    try:
        return load()
    except (FileNotFoundError, ValueError) as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: cannot be read as a dataset ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pyarrow/datasets raise many types for corrupt files
        raise ValueError(f"{path}: cannot be read as a dataset, corrupt or truncated? "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` to `path` through a sibling `.partial` file and a rename, so a reader (or a rerun
    after a crash) sees the old content or the new one, never half of it. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if isinstance(data, bytes):
            partial.write_bytes(data)
        else:
            partial.write_text(data, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
