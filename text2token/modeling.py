"""`Text2TokenModel`: a causal LM whose pooled hidden state is read through its own LM head."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import logging

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

# `from .adapters import ...`, not `from . import adapters`: transformers' custom_object_save only
# follows the former when it copies this module's files next to a saved model (trust_remote_code).
from .adapters import LoraSettings, complete_lora_settings, has_lora, inject_lora, merged_state_dict, upcast_lora
from .adapters import merge_lora as merge_lora_weights
from .attention import set_attention_mode, verify_attention_mode
from .configuration import Text2TokenConfig
from .model_files import check_model_folder
from .pooling import pool, position_ids_from_mask
from .sentence_transformers_compat import save_sentence_transformers_files
from .tokenization import combine_prompt, ensure_pad_token, replace_lone_surrogates, tokenize_texts
from .value_checks import check_range


logger = logging.getLogger(__name__)


@dataclass
class Text2TokenOutput(ModelOutput):
    """embeddings: pooled `h` [B, hidden]; logits: `W h` [B, vocab] in fp32 (never [B, seq, vocab]);
    last_hidden_state when asked for. The losses (`text2token.losses`) are computed from these."""

    embeddings: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None  # [B, seq, hidden], on request (MNTP)


class Text2TokenPreTrainedModel(PreTrainedModel):
    config_class = Text2TokenConfig
    base_model_prefix = "text2token"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def _init_weights(self, module):
        # Every weight comes from the backbone (pretrained or its own initialiser) or from peft.
        pass


class Text2TokenModel(Text2TokenPreTrainedModel):
    """An encoder: backbone + pooling (`embed`) + frozen LM-head projection (`project`). Training
    objectives are loss modules of `text2token.losses` that call `forward`.

    Build one around a pretrained causal LM with `Text2TokenModel.from_backbone(...)`; reload a saved
    one with `from_pretrained` (or `AutoModel.from_pretrained` once `text2token` is imported).
    """

    # Run data for the model card `push_to_hub` publishes (`hub.render_model_card`'s keyword
    # arguments); `Text2TokenTrainer` sets it on its final save. Not saved with the weights.
    model_card_data: dict | None = None

    def __init__(self, config: Text2TokenConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModelForCausalLM.from_config(config.lm_config)
        set_attention_mode(self.backbone, config.attention)
        if config.lora is not None and not has_lora(self.backbone):
            inject_lora(self.backbone, config.lora)
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_backbone(
        cls,
        backbone: str | PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        pooling: str = "mean",
        attention: str = "causal",
        prompt: str | None = None,
        max_length: int | None = None,
        lora: dict | LoraSettings | None = None,
        dtype: torch.dtype | str | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
    ) -> "Text2TokenModel":
        """Wrap a causal LM (a loaded model, a local folder or a Hub id) and optionally add LoRA."""
        if isinstance(backbone, str):
            source = backbone
            backbone = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code, use_safetensors=True,
            )
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            try:  # absolute, in `try`: remote-code copies of this file skip it (see push_to_hub)
                from text2token.backbones import portable_backbone_name
            except ImportError:
                pass
            else:  # saved config.json names the backbone, never this machine's path to it
                backbone.config._name_or_path = portable_backbone_name(source)
        if tokenizer is None:
            raise ValueError("from_backbone needs a tokenizer when given an already-loaded backbone")
        attn = backbone.config._attn_implementation
        config = Text2TokenConfig(
            lm_config=backbone.config, pooling=pooling, attention=attention, prompt=prompt,
            **({} if max_length is None else {"max_length": max_length}),  # None: the config's default
        )
        # A new composite config resets its sub-config's attention kernel; keep the one the backbone runs.
        config._attn_implementation = attn
        model = cls(config, backbone=backbone)
        model.tokenizer = tokenizer
        if lora is not None:
            model.add_lora(lora)
        return model

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, but safetensors only unless `use_safetensors=False`
        is passed explicitly: pickle weight files can run code when loaded."""
        kwargs.setdefault("use_safetensors", True)
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if isinstance(source, (str, os.PathLike)):
            check_model_folder(source)
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        upcast_lora(model.backbone)  # a `dtype=` load casts every weight, an unmerged adapter's too
        verify_attention_mode(model.backbone, model.config.attention)  # built on meta: check now
        return loaded

    def add_lora(self, lora: dict | LoraSettings | None = None) -> None:
        """Add a fresh LoRA adapter (paper defaults when `lora` is None); only it will train."""
        if has_lora(self.backbone):
            raise ValueError("this model already has a LoRA adapter: merge it (merge_lora) before adding another")
        settings = complete_lora_settings(lora)
        inject_lora(self.backbone, settings)
        self.config.lora = settings

    def merge_lora(self) -> None:
        """Fold the adapter into the backbone weights (stage 1 -> stage 2 hand-over)."""
        if has_lora(self.backbone):
            merge_lora_weights(self.backbone)
        self.config.lora = None

    # ----------------------------------------------------------------- tokenizer
    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            source = self.config._name_or_path
            if not source:
                raise ValueError("this model has no tokenizer: set `model.tokenizer = ...`")
            # Passing our config spares AutoTokenizer a config lookup, which with remote code
            # (auto_map, text2token not installed) would prompt for trust_remote_code.
            self.tokenizer = AutoTokenizer.from_pretrained(source, config=self.config)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = ensure_pad_token(tokenizer)

    def save_pretrained(self, save_directory, *args, merge_lora: bool = False, **kwargs):
        """Save weights (safetensors), config and tokenizer. `merge_lora=True` writes the adapter
        folded into the weights, leaving this in-memory model unmerged."""
        kwargs.setdefault("safe_serialization", True)
        if merge_lora and self.config.lora is not None:
            lora, self.config.lora = self.config.lora, None
            state_dict = kwargs.pop("state_dict", None) or self.state_dict()
            try:
                state_dict = merged_state_dict(state_dict, lora)
                super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)
            finally:
                self.config.lora = lora
        else:
            super().save_pretrained(save_directory, *args, **kwargs)
        if self._tokenizer is not None and kwargs.get("is_main_process", True):
            self._tokenizer.save_pretrained(save_directory)
        if kwargs.get("is_main_process", True):  # the folder also loads with SentenceTransformer(path)
            save_sentence_transformers_files(self.config, save_directory)

    def push_to_hub(self, repo_id: str, *, merge_lora: bool = True, model_card=None, **kwargs):
        """Upload the model (LoRA merged unless `merge_lora=False`), its modeling code and a model card:
        `model_card` if given, else one rendered from the trainer's run data or from the config.
        Other keyword arguments as in `hub.push_model_to_hub`."""
        try:
            # Absolute and inside `try`: transformers copies this file (and its relative imports) next
            # to saved weights as remote code, where text2token may be missing; it skips `try` blocks
            # when it lists the packages remote code needs.
            from text2token.hub import push_model_to_hub
        except ImportError:
            return super().push_to_hub(repo_id, **kwargs)
        return push_model_to_hub(self, repo_id, merge_lora=merge_lora, model_card=model_card, **kwargs)

    # ----------------------------------------------------------------- forward
    @property
    def lm_head(self) -> torch.nn.Module:
        return self.backbone.get_output_embeddings()

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden states [B, seq, hidden], in the backbone's dtype."""
        decoder = self.backbone.get_decoder()
        return decoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        ).last_hidden_state

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled last hidden states `h` [B, hidden], fp32."""
        return pool(self.hidden_states(input_ids, attention_mask), attention_mask, self.config.pooling)

    def project(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits `W h` of pooled vectors, in fp32 whatever the backbone's dtype."""
        head = self.lm_head
        bias = head.bias.float() if getattr(head, "bias", None) is not None else None
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return F.linear(embeddings.float(), head.weight.float(), bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_logits: bool = True,
        return_hidden_states: bool = False,
        **kwargs,
    ) -> Text2TokenOutput:
        """Embeddings (and logits) of a batch. Training computes its loss in the loss modules of
        `text2token.losses`, which call this."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.hidden_states(input_ids, attention_mask)
        embeddings = pool(hidden, attention_mask, self.config.pooling)
        logits = self.project(embeddings) if return_logits else None
        return Text2TokenOutput(embeddings=embeddings, logits=logits,
                                last_hidden_state=hidden if return_hidden_states else None)

    # ----------------------------------------------------------------- inference helpers
    def tokenize(self, texts: Sequence[str], max_length: int | None = None, prompt: str | None = None):
        """Model inputs for inference, truncated at `max_length` (default `config.encode_length`); `prompt`
        (an instruction) goes in front of each text, inside the model's own template."""
        return tokenize_texts(self.tokenizer, texts, max_length=max_length or self.config.encode_length,
                              prompt=combine_prompt(self.config.prompt, prompt))

    def resolve_prompt(self, prompt: str | None = None, prompt_name: str | None = None) -> str | None:
        """The instruction `encode` puts in front of texts: `prompt` itself, else `config.prompts[prompt_name]`."""
        if prompt is not None or prompt_name is None:
            return prompt
        prompts = self.config.prompts or {}
        if prompt_name not in prompts:
            raise ValueError(f"prompt_name={prompt_name!r} is not in config.prompts "
                             f"({sorted(prompts) or 'none configured'}): set config.prompts or pass prompt=")
        return prompts[prompt_name]

    @torch.inference_mode()
    def _batched(self, texts: Sequence[str], batch_size: int, show_progress_bar: bool | None, fn,
                 max_length: int | None = None, prompt: str | None = None):
        """Run `fn(model_inputs)` over length-sorted batches and return results in input order."""
        if isinstance(texts, str):
            raise TypeError("expected a list of texts, got a single str: wrap it in a list")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
        if max_length is not None:
            check_range("max_length", max_length, low=1, integer=True)
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
            cleaned = replace_lone_surrogates(text)
            if cleaned is not None:
                logger.warning("texts[%d] holds lone surrogates (not valid UTF-8): encoded with U+FFFD in their place", i)
                texts[i] = cleaned
        blank = [i for i, text in enumerate(texts) if not text.strip()]
        if blank:  # see tokenization.tokenize_texts: a defined, non-zero vector, never a NaN similarity
            logger.warning("%d empty or whitespace-only text(s) (texts%s) are encoded as the empty text: all get "
                           "the same vector", len(blank), blank[:5])
        order = np.argsort([-len(t) for t in texts], kind="stable")
        was_training = self.training
        self.eval()
        results = [None] * len(texts)
        show = len(texts) > 4 * batch_size if show_progress_bar is None else show_progress_bar
        try:
            for start in tqdm(range(0, len(texts), batch_size), desc="Encoding", disable=not show):
                idx = order[start : start + batch_size]
                inputs = self.tokenize([texts[i] for i in idx], max_length, prompt).to(self.device)
                for i, row in zip(idx, fn(inputs)):
                    results[i] = row
        finally:
            self.train(was_training)
        return results

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        convert_to_tensor: bool = False,
        show_progress_bar: bool | None = None,
        max_length: int | None = None,
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        normalize_embeddings: bool | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embeddings `h` (hidden size) of `texts`: a float32 array [len(texts), hidden], or one vector for
        a single string (as sentence-transformers' `encode`).

        Texts are truncated at `max_length` tokens, prompt included; by default at
        `config.encode_length` (at least 512, not the shorter training length). `prompt` (an instruction
        such as "query: ") or `prompt_name` (a key of `config.prompts`) goes in front of every text;
        none by default. `normalize_embeddings` is sentence-transformers' name of `normalize`."""
        single = isinstance(texts, str)
        rows = self._batched([texts] if single else texts, batch_size, show_progress_bar,
                             lambda inputs: self.embed(inputs["input_ids"], inputs["attention_mask"]).cpu(),
                             max_length, self.resolve_prompt(prompt, prompt_name))
        out = torch.stack(rows) if rows else torch.empty(0, self.config.lm_config.hidden_size)
        if normalize or normalize_embeddings:
            out = F.normalize(out, dim=-1)
        out = out[0] if single else out
        return out if convert_to_tensor else out.numpy()

    def similarity(self, a, b) -> torch.Tensor:
        """Cosine similarity matrix [len(a), len(b)] of two sets of embeddings (arrays, tensors or single
        vectors), as sentence-transformers' `model.similarity`."""
        a, b = (torch.atleast_2d(torch.as_tensor(x, dtype=torch.float32)) for x in (a, b))
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T

    def explain(self, texts: Sequence[str], k: int = 10, batch_size: int = 32,
                max_length: int | None = None) -> list[list[tuple[str, float]]]:
        """Each text's top-k vocabulary tokens under `softmax(W h)`, with their probabilities
        (texts truncated as in `encode`)."""
        check_range("k", k, low=1, integer=True)

        def top_tokens(inputs):
            probs = self.project(self.embed(inputs["input_ids"], inputs["attention_mask"])).softmax(-1)
            values, ids = probs.topk(k, dim=-1)
            return list(zip(ids.cpu().tolist(), values.cpu().tolist()))

        rows = self._batched(texts, batch_size, False, top_tokens, max_length)
        return [[(self.tokenizer.decode([i]), p) for i, p in zip(ids, ps)] for ids, ps in rows]
