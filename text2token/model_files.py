"""Checks of a saved model folder before it is loaded, so that a damaged one is refused naming the file.

- A weight file that is corrupt or truncated fails here with its path, not deep in the loader.
- A Text2Token folder whose `config.json` lost or changed `model_type` (a hand edit, a bad merge) is
  refused: as `llama` it would build a default-size 7B Llama from the wrapper's config, and without a
  model_type transformers would ask whether to run the folder's remote code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TEXT2TOKEN_MODEL_TYPE = "text2token"
TEXT2TOKEN_ARCHITECTURE = "Text2TokenModel"


def read_config(folder: str | os.PathLike) -> dict | None:
    """`folder/config.json` as a dict (None when the folder has none); malformed JSON names the file."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(config).__name__}")
    return config


def looks_like_text2token(config: dict) -> bool:
    return TEXT2TOKEN_ARCHITECTURE in (config.get("architectures") or []) or (
        "lm_config" in config and "pooling" in config)


def check_model_folder(folder: str | os.PathLike) -> None:
    """Refuse a local model folder whose config or weight files are damaged (no-op for a Hub id)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    config = read_config(folder)
    if config is not None and looks_like_text2token(config) and config.get("model_type") != TEXT2TOKEN_MODEL_TYPE:
        found = f"model_type {config['model_type']!r}" if "model_type" in config else "no model_type"
        raise ValueError(f"{folder / 'config.json'}: a Text2Token model (architectures {config.get('architectures')}) "
                         f"with {found}: restore \"model_type\": \"{TEXT2TOKEN_MODEL_TYPE}\" in it")
    for weights in sorted(folder.glob("*.safetensors")):
        check_safetensors(weights)


def check_safetensors(path: str | os.PathLike) -> None:
    """Open the file's header (cheap): a corrupt or truncated file fails naming it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as exc:  # safetensors raises SafetensorError, OSError, ValueError
        raise ValueError(f"{path}: corrupt or truncated safetensors file ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
