"""Reading user-supplied data files so that a bad one is named, not buried in a library traceback."""

from __future__ import annotations

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
