"""Content digests that name files and model weights wherever they live (in saved records, cards and
target specs), so that a moved folder keeps its name and a changed one does not."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (64 hex digits), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_WEIGHTS_DIGESTS: dict[tuple, str] = {}


def weights_digest(folder: str | os.PathLike) -> str:
    """sha256 of a model folder's safetensors files (12 hex digits): names its weights wherever the
    folder lives. Remembered per process while the files' sizes and times stay the same."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no .safetensors weights")
    stamp = (str(Path(folder).resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if stamp not in _WEIGHTS_DIGESTS:
        _WEIGHTS_DIGESTS[stamp] = hashlib.sha256("".join(file_digest(p) for p in files).encode()).hexdigest()[:12]
    return _WEIGHTS_DIGESTS[stamp]
