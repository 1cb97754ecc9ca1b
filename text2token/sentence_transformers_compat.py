"""Load a saved Text2Token folder with `SentenceTransformer(path, trust_remote_code=True)`.

`save_sentence_transformers_files` writes, beside the weights, the files sentence-transformers reads:
`modules.json` naming one input module (`Text2TokenSentenceEncoder`, in sentence_transformers_module.py),
its `sentence_bert_config.json` (the inference length) and `config_sentence_transformers.json` (the
prompts, cosine similarity, version requirements). Transformers copies both files into every saved folder
as remote code (modeling.py imports this one, this one the other), so the module loads with or without
text2token installed.

Why one custom module instead of sentence-transformers' Transformer + Pooling: the PromptEOL prompt has
a suffix (the text sits inside it) and truncation must shorten the text, never the prompt, as
`tokenization.tokenize_texts` does; sentence-transformers' prompts are prefixes only. Pooling,
bidirectional attention and position ids then come from `Text2TokenModel.embed` itself, so the vectors
are `model.encode`'s. Sentence-transformers (>= 6.0) asks for `trust_remote_code=True` for any module
class outside its own package, installed or not.
"""

from __future__ import annotations

import json
import os

MODULE_FILE = "sentence_transformers_module"
MODULE_CLASS = "Text2TokenSentenceEncoder"
ST_CONFIG = "config_sentence_transformers.json"
MODULE_CONFIG = "sentence_bert_config.json"
MODULES = "modules.json"
# The first release whose module loading (InputModule.preprocess with `prompt`) this module implements.
REQUIREMENTS = {"sentence_transformers": {"specifier": ">=6.0", "reason": "the Text2Token module is an "
                                          "InputModule of the sentence-transformers 6 API"},
                "transformers": ">=5.0"}


def inference_length(config) -> int:
    """Tokens per text at inference: what `Text2TokenModel.encode` truncates to (`config.encode_length`),
    or the training length for configs older than the inference length."""
    return int(getattr(config, "encode_length", None) or config.max_length)


def _write_json(path: str, data) -> None:
    # Atomic: a crash mid-write must not leave a half file that breaks SentenceTransformer(path).
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def sentence_transformers_configs(config) -> dict[str, object]:
    """The three sentence-transformers files of a model with this `Text2TokenConfig`, by file name."""
    prompt = config.prompt or ""
    # The template itself (with its `{text}` slot) is the prompt: `Text2TokenSentenceEncoder` wraps the
    # text in it; a plain prefix passed as `prompt=` goes in front of the text, inside the template.
    # Configured instructions (`config.prompts`) are such prefixes, off unless asked for by name
    # (`encode_query`, `prompt_name=`), as `Text2TokenModel.encode` has them.
    instructions = getattr(config, "prompts", None)
    st_config = {
        "model_type": "SentenceTransformer",
        "prompts": dict(instructions) if instructions else {"query": prompt, "document": prompt},
        "default_prompt_name": "document" if prompt and not instructions else None,
        "similarity_fn_name": "cosine",
        "requirements": REQUIREMENTS,
    }
    modules = [{"idx": 0, "name": "0", "path": "", "type": f"{MODULE_FILE}.{MODULE_CLASS}"}]
    return {MODULES: modules, MODULE_CONFIG: {"max_seq_length": inference_length(config)}, ST_CONFIG: st_config}


def save_sentence_transformers_files(config, save_directory: str | os.PathLike) -> None:
    """Write the sentence-transformers files of a model with `config` into `save_directory`."""
    for name, data in sentence_transformers_configs(config).items():
        _write_json(os.path.join(save_directory, name), data)


def encoder_class():
    """`Text2TokenSentenceEncoder`, the module `modules.json` names (this imports sentence-transformers).

    Imported here, inside a function, so that `import text2token` stays light, and relatively, so that
    transformers copies its file into every saved folder with the rest of the remote code."""
    from .sentence_transformers_module import Text2TokenSentenceEncoder

    return Text2TokenSentenceEncoder
