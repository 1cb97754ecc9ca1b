"""Configuration of a Text2Token embedding model: which backbone, how it pools, how it attends."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

POOLING_MODES = ("mean", "last")
ATTENTION_MODES = ("causal", "bidirectional")
# How two embeddings are scored: "cosine" (sentence-transformers' habit) or "dot", the raw dot
# product the authors score with (their mteb wrapper's `similarity`).
SIMILARITY_FUNCTIONS = ("cosine", "dot")

# PromptEOL (Jiang et al., 2023), the prompt the paper pairs with last-token pooling.
PROMPT_EOL = 'This sentence : "{text}" means in one word:"'
# Inference reads at least this many tokens by default, whatever the (shorter) training length.
DEFAULT_INFERENCE_LENGTH = 512


class Text2TokenConfig(PreTrainedConfig):
    """Config of a [`Text2TokenModel`].

    Args:
        lm_config: config of the causal-LM backbone (any `AutoModelForCausalLM` architecture).
        pooling: `"mean"` over non-padding tokens, or `"last"` non-padding token.
        attention: `"causal"` (the backbone as trained) or `"bidirectional"`.
        prompt: template with a `{text}` slot wrapped around every input; `None` means the raw text.
            Last pooling needs a prompt (the paper uses PromptEOL), so it defaults to `PROMPT_EOL`.
        lora: the LoRA settings of an adapter that is *not merged* into the weights (r, lora_alpha,
            lora_dropout, target_modules); `None` once merged or when there never was one.
        max_length: the training length: truncation in tokens, prompt included, of training inputs and
            of the texts model-derived targets are computed from.
        inference_max_length: truncation length of `encode`, `explain` and the mteb wrapper. `None`
            (default) means the larger of 512 and `max_length`, capped by the backbone's positions: a
            model trained on 128-token texts still reads a whole review or document (the paper trains
            at 128 and evaluates at 1024). Any call can override it.
        similarity: how evaluation scores two embeddings, `"cosine"` (default) or `"dot"` (the
            authors' evaluation); the mteb wrapper's `ModelMeta.similarity_fn_name` follows it.
        prompts: named instructions (`{"query": "Given a question, find the passage: ", "document": ""}`)
            that `encode(..., prompt_name=...)` and the mteb wrapper (by query/document) put in front of a
            text, inside `prompt`; `None` (default): no instructions, every text encoded alike.
    """

    model_type = "text2token"
    sub_configs_defaults = {"lm_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    lm_config: dict | PreTrainedConfig | None = None
    pooling: str = "mean"
    attention: str = "causal"
    prompt: str | None = None
    lora: dict | None = None
    max_length: int = 128
    inference_max_length: int | None = None
    similarity: str = "cosine"
    prompts: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r}: expected one of {POOLING_MODES}")
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention={self.attention!r}: expected one of {ATTENTION_MODES}")
        if self.pooling == "last" and self.prompt is None:
            self.prompt = PROMPT_EOL
        if self.prompt is not None and "{text}" not in self.prompt:
            raise ValueError(f"prompt={self.prompt!r} has no '{{text}}' slot for the input text")
        if self.max_length < 1:
            raise ValueError(f"max_length={self.max_length}: must be a positive number of tokens")
        if self.prompts is not None and not (isinstance(self.prompts, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.prompts.items())):
            raise ValueError(f"prompts={self.prompts!r}: expected a mapping of prompt name to instruction text")
        self.validate_inference_settings()

    def validate_inference_settings(self) -> None:
        """Check the settings a run may change after construction (see factory.build_model)."""
        if self.inference_max_length is not None and self.inference_max_length < 1:
            raise ValueError(f"inference_max_length={self.inference_max_length}: must be a positive number of tokens")
        if self.similarity not in SIMILARITY_FUNCTIONS:
            raise ValueError(f"similarity={self.similarity!r}: expected one of {SIMILARITY_FUNCTIONS}")

    @property
    def encode_length(self) -> int:
        """The length `encode` uses unless told otherwise (see `inference_max_length`)."""
        if self.inference_max_length is not None:
            return self.inference_max_length
        length = max(DEFAULT_INFERENCE_LENGTH, self.max_length)
        positions = getattr(self.lm_config, "max_position_embeddings", None) if self.lm_config is not None else None
        return min(length, positions) if positions else length
