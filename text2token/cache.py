"""Where text2token keeps what it derives once and reuses: converted backbones, built corpora."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$TEXT2TOKEN_CACHE`, else `~/.cache/text2token`."""
    return Path(os.environ.get("TEXT2TOKEN_CACHE", Path.home() / ".cache" / "text2token"))
