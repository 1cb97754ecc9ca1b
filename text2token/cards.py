"""What both kinds of Hub card share: where the templates live, and how run values become card text."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

logger = logging.getLogger(__name__)


def _template_dir() -> Path:
    """`model_cards/` beside the package in a source checkout (the project's fixed layout), else the
    copy a wheel installs under `<prefix>/share/text2token/model_cards` (setup.cfg data_files)."""
    source = Path(__file__).resolve().parent.parent / "model_cards"
    installed = Path(sys.prefix) / "share" / "text2token" / "model_cards"
    return source if source.is_dir() or not installed.is_dir() else installed


TEMPLATE_DIR = _template_dir()
MODEL_CARD_TEMPLATE = TEMPLATE_DIR / "model_card.md"
DATASET_CARD_TEMPLATE = TEMPLATE_DIR / "dataset_card.md"
TAGS = ["text2token", "sentence-embeddings", "feature-extraction"]
METHOD_KINDS = {"data": "data-driven", "model": "model-derived"}
DROP_REASONS = {"empty_target": "no content token left (stopwords or punctuation only)",
                "empty_text": "empty or whitespace-only text"}


def template_source(path: Path) -> dict:
    if path.is_file():
        return {"template_path": str(path)}
    # An install without the source tree's model_cards/ still gets a valid (generic) card.
    logger.warning("card template %s not found: falling back to huggingface_hub's default template", path)
    return {}


def hub_repo_id(name: str | None) -> str | None:
    """`name` if it names a Hub repo (owner/name, not a local path), else None: YAML fields such as
    `base_model` must hold Hub ids."""
    if not name or os.path.exists(name) or name.count("/") != 1:
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def cell_text(value) -> str:
    """A value for a markdown table cell: reprs for non-strings, no characters that break a table."""
    text = value if isinstance(value, str) else repr(value)
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def number_text(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else cell_text(value)
