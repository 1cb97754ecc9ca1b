"""`Text2TokenEmbedder`: a Text2Token model behind the evaluation embedder interface (its own room, so
the system loader and the mteb metadata both use it without importing each other)."""

from __future__ import annotations

import numpy as np

from ..modeling import Text2TokenModel


class Text2TokenEmbedder:
    """`Text2TokenModel.encode` behind the evaluation embedder interface, at one stated length
    (`max_length`; default the model's inference length, `config.encode_length`). The name (which keys
    the embedding cache) states the length, and the dtype when it is not float32."""

    def __init__(self, model: Text2TokenModel, name: str, max_length: int | None = None):
        self.model = model.eval()
        self.max_length = max_length or model.config.encode_length
        dtype = str(model.dtype).removeprefix("torch.")
        self.name = f"{name}-L{self.max_length}" + ("" if dtype == "float32" else f"-{dtype}")
        self.similarity = getattr(model.config, "similarity", "cosine")
        self.dim = model.config.lm_config.hidden_size
        self.n_parameters = sum(p.numel() for p in model.parameters())
        self.prompts = dict(model.config.prompts or {})  # query/document instructions the mteb wrapper maps

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False,
               prompt_name: str | None = None) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize=normalize, show_progress_bar=False,
                                 max_length=self.max_length, prompt_name=prompt_name)
