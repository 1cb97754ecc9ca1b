"""The output-folder contract every command follows before it writes anything.

A run writes only into a folder that is new or empty, or that holds its own run record (a folder it
made earlier, resumed); never into a folder that holds one of its inputs (the backbone, stage 1, the
targets, the corpus: resolved paths are compared, so `./out/../out` and a symlink are caught); a
folder holding anything else is refused, naming what is there, unless the user passes `--overwrite`.
The input rule has no override: nothing the run reads is ever replaced by what it writes.
Then the run takes the folder's lock (`output_lock`), so two runs never share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .output_lock import LOCK_FILE, acquire_output_lock
from .staging import MARKER_FILE

# Names the library itself leaves in a folder it writes into, which do not make the folder "the user's".
LIBRARY_FILES = (LOCK_FILE,)


class OutputFolderError(ValueError):
    """The output folder would overwrite an input or files that this run did not write."""


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(path))).resolve()


def _overlap(output: Path, source: Path) -> bool:
    return output == source or source in output.parents or output in source.parents


def local_inputs(inputs: Mapping[str, str | os.PathLike | None]) -> dict[str, Path]:
    """The inputs (option name -> value) that name an existing local file or folder, resolved; Hub
    ids and named corpora do not exist locally and are left out."""
    found = {}
    for name, value in inputs.items():
        if value and os.path.exists(os.path.expanduser(os.fspath(value))):
            found[name] = _resolved(value)
    return found


def _foreign_entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()
                  if not entry.name.startswith(LIBRARY_FILES) and not (entry / MARKER_FILE).is_file())


def check_output_folder(folder: str | os.PathLike, *, option: str, inputs: Mapping[str, str | os.PathLike | None] = {},
                        records: Iterable[str] = (), overwrite: bool = False) -> Path:
    """Refuse `folder` (the value of `option`) when it overlaps an input, or when it holds files and
    none of `records` (the names of this kind of run's own record); returns it resolved."""
    output = _resolved(folder)
    for name, source in local_inputs(inputs).items():
        if _overlap(output, source):
            raise OutputFolderError(
                f"{option}={folder} {'is' if output == source else 'overlaps'} this run's input {name}={source}: "
                f"writing there would overwrite it. Choose another {option} (a new or empty folder)")
    if output.exists() and not output.is_dir():
        raise OutputFolderError(f"{option}={folder} is a file, not a folder: choose another {option}")
    if output.is_dir() and not overwrite and not any((output / record).exists() for record in records):
        foreign = _foreign_entries(output)
        if foreign:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            raise OutputFolderError(
                f"{option}={folder} holds files this run did not write ({shown}): choose a new or empty folder, "
                f"or pass --overwrite to let this run write there (files of the same name are replaced)")
    return output


def claim_output_folder(folder: str | os.PathLike, *, option: str,
                        inputs: Mapping[str, str | os.PathLike | None] = {}, records: Iterable[str] = (),
                        overwrite: bool = False, lock_path: str | os.PathLike | None = None) -> str:
    """`check_output_folder`, then take the folder's lock (re-entrant); returns the lock file's path."""
    check_output_folder(folder, option=option, inputs=inputs, records=records, overwrite=overwrite)
    return acquire_output_lock(folder, lock_path=lock_path)


def sibling_lock(folder: str | os.PathLike) -> Path:
    """The lock of a folder that is replaced whole by a rename (a target dataset, an export): beside it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}{LOCK_FILE}"
