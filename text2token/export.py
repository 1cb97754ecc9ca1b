"""Export a Text2Token model for tools that know nothing of text2token.

`export_sentence_transformers(model, out)` writes the backbone with any LoRA merged, as a standard
checkpoint of its own architecture (e.g. `LlamaForCausalLM`), plus sentence-transformers' own module configs
(Transformer -> Pooling -> optional Normalize): plain `SentenceTransformer(out)`, without remote code, and
serving engines that read those configs give `model.encode`'s vectors. Settings those configs cannot express
are refused with the reason, rather than exported to embed differently.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .output_folder import check_output_folder, sibling_lock
from .output_lock import acquire_output_lock, release_output_lock
from .staging import drop_marker, make_staging, remove_stale_staging

ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


class ExportError(ValueError):
    """The model has a setting that a plain sentence-transformers folder cannot reproduce."""


def export_refusals(config) -> list[str]:
    """Why `config` cannot be exported as plain sentence-transformers modules (empty when it can)."""
    reasons = []
    if config.prompt is not None:
        reasons.append(f"prompt={config.prompt!r}: sentence-transformers prompts are prefixes, and its truncation "
                       "would cut the end of the prompt (the words last-token pooling reads); load the text2token "
                       "folder itself with SentenceTransformer(path, trust_remote_code=True)")
    if config.attention != "causal":
        reasons.append(f"attention={config.attention!r}: a tool that ignores the config's is_causal flag would "
                       "attend causally and embed differently")
    if config.pooling != "mean":
        reasons.append(f"pooling={config.pooling!r} without a prompt has no exact sentence-transformers pooling here")
    return reasons


def export_sentence_transformers(model, out: str | os.PathLike, *, normalize: bool = False) -> Path:
    """Write `model` (a `Text2TokenModel` or a path to one) to `out` as a plain sentence-transformers folder.
    A model object with an unmerged LoRA adapter is merged in place (pass a path to leave it as it is)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    out = Path(out)
    # Before the model loads. An export always writes a fresh folder (there is no --overwrite), so a
    # non-empty one is refused as such; then the contract keeps it out of its own model's folder.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: export writes a fresh one")
    model_source = model if isinstance(model, (str, os.PathLike)) else getattr(model.config, "_name_or_path", None)
    check_output_folder(out, option="output", inputs={"model": model_source})
    source_folder = None
    if isinstance(model, (str, os.PathLike)):
        from .modeling import Text2TokenModel

        source_folder = Path(model) if Path(model).is_dir() else None
        model = Text2TokenModel.from_pretrained(model)
    reasons = export_refusals(model.config)
    if reasons:
        raise ExportError("cannot export as a plain sentence-transformers model: " + "; ".join(reasons))
    lock = acquire_output_lock(out, lock_path=sibling_lock(out))  # one export per folder
    remove_stale_staging(out)
    length = int(getattr(model.config, "encode_length", None) or model.config.max_length)
    staging = make_staging(out)
    try:
        if model.config.lora is not None:
            model.merge_lora()
        model.backbone.save_pretrained(staging, safe_serialization=True)
        tokenizer = model.tokenizer
        # sentence-transformers 6 reads its max_seq_length from the tokenizer's model_max_length: left
        # at the tokenizer's own (often 1e30), it would read past the model's inference length.
        side, tokenizer.padding_side = tokenizer.padding_side, "right"  # default position ids = ours
        limit, tokenizer.model_max_length = tokenizer.model_max_length, length
        try:
            tokenizer.save_pretrained(staging)
        finally:
            tokenizer.padding_side, tokenizer.model_max_length = side, limit
        # Let sentence-transformers write its own configs, from its own modules read back from the folder.
        # Text only: with the "message" modality sentence-transformers would wrap texts in the chat template.
        transformer = Transformer(str(staging), max_seq_length=length, module_output_name="token_embeddings",
                                  modality_config={"text": {"method": "forward",
                                                            "method_output_name": "last_hidden_state"}})
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")]
        st = SentenceTransformer(modules=modules + ([Normalize()] if normalize else []), similarity_fn_name="cosine")
        with tempfile.TemporaryDirectory() as configs:
            st.save(configs, create_model_card=False)
            for name in os.listdir(configs):
                source = Path(configs, name)
                if name in ST_FILES or source.is_dir():
                    shutil.copytree(source, staging / name) if source.is_dir() else shutil.copy(source, staging / name)
        _pin_max_seq_length(staging, length)
        write_export_card(source_folder, staging, model.config, normalize=normalize, out=out)
        drop_marker(staging)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)  # the folder appears whole or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        release_output_lock(lock)
    return out


def _pin_max_seq_length(folder: Path, length: int) -> None:
    """Also state the length in sentence_bert_config.json, where sentence-transformers before 6 read it."""
    path = folder / "sentence_bert_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    config["max_seq_length"] = length
    path.write_text(json.dumps(config, indent=2))


def write_export_card(source: Path | None, folder: Path, config, *, normalize: bool, out: Path) -> None:
    """README.md of the export: the source folder's card (its metadata and run data) with the usage of a
    plain sentence-transformers folder, or a card rendered from the config when the source has none."""
    from .cards import usage_path
    from .hub import export_model_card

    card = export_model_card(source, config, normalize=normalize, path=usage_path(None, str(out)))
    card.save(str(folder / "README.md"))
