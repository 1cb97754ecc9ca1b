"""Every default of a target build, in one dataclass: the builders, `TargetSpec.resolve` and the
command-line options read them here, so a default is stated once."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TargetDefaults:
    weighting: str = "uniform"  # the paper's: the mass spread evenly over the text's own tokens
    stopwords: str = "nltk"  # the authors' list (NLTK's English stopwords plus ! , . ?)
    model_top_k: int = 32  # this project's: model-derived q is stored as its top-k entries
    mean_pooling_temperature: float = 1e-4  # the paper's tau for mean pooling
    last_pooling_temperature: float = 1e-5  # the paper's tau for last-token pooling
    shard_size: int = 1024  # texts per resumable shard of the model pass

    def temperature(self, pooling: str) -> float:
        """The paper's tau for model-derived targets under `pooling`."""
        if pooling not in ("mean", "last"):
            raise ValueError(f"pooling={pooling!r}: expected 'mean' or 'last'")
        return self.mean_pooling_temperature if pooling == "mean" else self.last_pooling_temperature


TARGET_DEFAULTS = TargetDefaults()
