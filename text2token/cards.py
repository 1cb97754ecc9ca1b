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


# ----------------------------------------------------------------------------- what every model card cites
PAPER_URL = "https://arxiv.org/abs/2510.10224"
PAPER_BIBTEX = """@misc{an2025text2token,
  title         = {Text2Token: Unsupervised Text Representation Learning with Token Target Prediction},
  author        = {An, Ruize and Zhang, Richong and Nie, Zhijie and Wu, Zhanyu and Zhang, Yanzhao and Long, Dingkun},
  year          = {2025},
  eprint        = {2510.10224},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CL},
  url           = {https://arxiv.org/abs/2510.10224}
}"""
# The method's public training code: the authors' release (recipes/README.md reads its values). A
# project URL in this package's metadata (setup.cfg `url`) takes its place as the code that trained.
AUTHORS_CODE_URL = "https://github.com/GDNL-ACT/anruize_target_learn"
FRAMEWORKS = ("text2token", "torch", "transformers", "peft", "sentence-transformers", "datasets", "tokenizers",
              "huggingface_hub")


def library_bibtex(version: str) -> str:
    return ("@software{text2token,\n"
            "  title   = {text2token: Text2Token embeddings from decoder-only language models},\n"
            f"  version = {{{version}}},\n"
            "  note    = {An implementation of Text2Token (arXiv 2510.10224) on transformers, peft and "
            "sentence-transformers}\n}")


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def framework_versions() -> list[tuple[str, str]]:
    """(package, version) of Python and the installed packages a saved model was made with."""
    import platform

    return [("Python", platform.python_version())] + [
        (name, found) for name in FRAMEWORKS if (found := package_version(name))]


def training_code_url() -> str:
    """Where the code that trains these models is published: this package's project URL when its metadata
    has one, else the authors' release of the method."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata("text2token")
    except PackageNotFoundError:
        return AUTHORS_CODE_URL
    urls = [meta.get("Home-page")] + [entry.split(",", 1)[-1].strip() for entry in meta.get_all("Project-URL") or []]
    return next((url for url in urls if url and url.startswith("http")), AUTHORS_CODE_URL)


def usage_path(repo_id: str | None, output_dir: str | None = None) -> str:
    """What a card's usage snippets load: the Hub id when there is one; else the run's output folder as
    it was given (relative to where the run was launched), never a bare name that reads as a Hub id."""
    if hub_repo_id(repo_id) and not (output_dir and os.path.exists(repo_id)):
        return repo_id
    folder = output_dir or repo_id or "path/to/this/model"
    if os.path.isabs(folder):  # a card never records this machine's paths: relative to the launch folder
        relative = os.path.relpath(folder)
        folder = relative if not relative.startswith("..") else os.path.basename(os.path.normpath(folder))
    folder = folder.replace(os.sep, "/").rstrip("/")
    return folder if folder.startswith(".") else f"./{folder}"


def replace_section(text: str, name: str, body: str) -> str:
    """Swap the body between `<!-- name -->` and `<!-- /name -->` markers of a rendered card."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"the card has no {start} ... {end} section to replace")
    return f"{head}{start}\n{body.strip()}\n{end}{rest.split(end, 1)[1]}"
