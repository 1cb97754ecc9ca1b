"""The sentence-transformers input module of a saved Text2Token folder (see sentence_transformers_compat)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .sentence_transformers_compat import MODULE_CONFIG, inference_length
from .tokenization import combine_prompt, replace_lone_surrogates, tokenize_texts

# In `try`: transformers checks the imports of every remote-code file when `AutoModel` loads the folder,
# and sentence-transformers must stay optional there; it skips imports inside `try` blocks.
try:
    from sentence_transformers.base.modules import InputModule as _ModuleBase
except ImportError:
    _ModuleBase = torch.nn.Module


class Text2TokenSentenceEncoder(_ModuleBase):
    """A sentence-transformers input module around a whole `Text2TokenModel`: wraps texts in the model's
    prompt, truncates them to `max_seq_length` without cutting the prompt, and returns the pooled `h`
    as `sentence_embedding`."""

    config_file_name = MODULE_CONFIG
    config_keys = ["max_seq_length"]
    save_in_root = True

    def __init__(self, model_name_or_path: str, max_seq_length: int | None = None, *,
                 model_kwargs: dict | None = None, revision: str | None = None, token=None,
                 cache_folder: str | None = None, local_files_only: bool = False):
        super().__init__()
        from transformers import AutoTokenizer

        from .modeling import Text2TokenModel

        hub = {"revision": revision, "token": token, "cache_dir": cache_folder, "local_files_only": local_files_only}
        self.model = Text2TokenModel.from_pretrained(model_name_or_path, **hub, **(model_kwargs or {}))
        self.model.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, config=self.model.config, **hub)
        self.max_seq_length = int(max_seq_length or inference_length(self.model.config))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder: str | None = None,
             revision: str | None = None, local_files_only: bool = False, model_kwargs: dict | None = None,
             backend: str | None = None, **kwargs) -> "Text2TokenSentenceEncoder":
        if backend not in (None, "torch"):  # sentence-transformers would otherwise run torch fp32 silently
            raise ValueError(f"backend={backend!r}: a Text2Token folder runs with the torch backend only (no ONNX "
                             "or OpenVINO export exists for it yet, see the text2token README); load it without "
                             "backend=")
        config = cls.load_config(model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder,
                                 revision=revision, local_files_only=local_files_only)
        return cls(model_name_or_path, max_seq_length=config.get("max_seq_length"), model_kwargs=model_kwargs,
                   revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_files_only)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer) -> None:
        self.model.tokenizer = tokenizer

    def _template(self, prompt: str | None) -> str | None:
        # A plain prefix (an instruction, "query: "...) goes before the text, inside the model's template.
        return combine_prompt(self.model.config.prompt, prompt)

    def preprocess(self, inputs: Sequence[str], prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        texts = []
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise TypeError(f"inputs[{i}] is {type(text).__name__}: a Text2Token model encodes single texts (str)")
            texts.append(replace_lone_surrogates(text) or text)
        batch = tokenize_texts(self.model.tokenizer, texts, max_length=self.max_seq_length,
                               prompt=self._template(prompt))
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = self.model.embed(features["input_ids"], features["attention_mask"])
        return features

    def get_sentence_embedding_dimension(self) -> int:
        return self.model.config.lm_config.hidden_size

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.model.save_pretrained(output_path)
        self.save_config(output_path)
