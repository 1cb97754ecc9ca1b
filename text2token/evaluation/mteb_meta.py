"""A saved Text2Token model described as mteb describes models: a `ModelMeta` whose loader builds the
mteb encoder wrapper, so `meta.load_model()` (what `mteb.get_model` calls) and `mteb.evaluate` work on
it, and whose `name`/`revision` place results in the layout of mteb's results repository:
`results/{org}__{model}/{revision}/{Task}.json` beside `model_meta.json` (written by mteb's own
`ResultCache.save_to_cache` when `mteb.evaluate` runs with a cache).

Everything is read from the folder without loading the weights: the config (embedding size, inference
length, prompt), the safetensors headers (parameter counts and memory), and the model card written by
the trainer (license, base model, language). A Hub id is fetched once as a snapshot and named by its
commit; a local folder is named by the digest of its weights, so changed weights get a new revision
folder instead of overwriting the old results.
"""

from __future__ import annotations

import datetime
import functools
import json
import typing
from pathlib import Path

from mteb.models import ModelMeta
from mteb.types._metadata import Licenses
from safetensors import safe_open

from ..cards import PAPER_BIBTEX, PAPER_URL, hub_repo_id, library_bibtex, package_version, training_code_url
from ..digests import weights_digest
from ..configuration import Text2TokenConfig
from ..lineage import resolve_lineage
from .mteb_encoder import EmbedderEncoder, mteb_model_name

LOCAL_ORG = "text2token-eval"  # the org of a local folder's name (mteb names are "org/model")
MTEB_LICENSES = frozenset(typing.get_args(Licenses))
# Hub card `language` codes -> mteb's ISO 639-3 + script codes, for the languages backbones declare.
_LANGUAGES = {"en": "eng-Latn", "de": "deu-Latn", "fr": "fra-Latn", "es": "spa-Latn", "it": "ita-Latn",
              "pt": "por-Latn", "nl": "nld-Latn", "zh": "zho-Hans", "ja": "jpn-Jpan", "ru": "rus-Cyrl"}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _resolve(source: str | Path, revision: str | None) -> tuple[Path, str | None, str]:
    """(local folder, Hub id or None, revision) for a folder or a Hub id."""
    path = Path(source)
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a saved model folder")
        return path, None, revision or weights_digest(path)
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(str(source), revision=revision))
    return folder, str(source), folder.name  # snapshots/<commit>: the exact revision evaluated


def _read_card(folder: Path) -> dict:
    """The YAML header of the folder's model card (empty when there is none)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    from huggingface_hub import ModelCard

    return ModelCard.load(readme).data.to_dict()


def _weight_counts(folder: Path) -> tuple[int, float]:
    """(parameters, MB) from the safetensors headers; no tensor is read."""
    n_params, n_bytes = 0, 0
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(file, framework="np") as handle:
            for key in handle.keys():
                tensor = handle.get_slice(key)
                count = 1
                for size in tensor.get_shape():
                    count *= size
                n_params += count
                n_bytes += count * _DTYPE_BYTES.get(tensor.get_dtype(), 4)
    if n_params == 0:
        raise FileNotFoundError(f"{folder} has no .safetensors weights")
    return n_params, round(n_bytes / 2**20, 1)


def _local_name(folder: Path) -> str:
    """The Hub repo the run was meant for (training_args.json's hub_model_id), else the folder's name."""
    args_file = folder / "training_args.json"
    if args_file.is_file():
        hub_id = json.loads(args_file.read_text()).get("hub_model_id")
        if hub_id and "/" in hub_id:
            return hub_id
    return mteb_model_name(f"{folder.resolve().parent.name}-{folder.resolve().name}")


def _release_date(folder: Path, hub_id: str | None) -> str:
    """The day the weights were saved: the Hub's last commit for a Hub id (a snapshot's files carry the
    download time), else the newest weight file's modification time."""
    if hub_id:
        try:
            from huggingface_hub import HfApi

            modified = HfApi().model_info(hub_id).last_modified
            if modified is not None:
                return modified.date().isoformat()
        except Exception:  # offline or unreachable: the files' own time below
            pass
    newest = max(path.stat().st_mtime for path in folder.glob("*.safetensors"))
    return datetime.datetime.fromtimestamp(newest, tz=datetime.timezone.utc).date().isoformat()


def _run_corpora(folder: Path) -> set[str]:
    """The corpora the run record (training_complete.json) names, portably (a local file by its name)."""
    marker = folder / "training_complete.json"
    if not marker.is_file():
        return set()
    data = (json.loads(marker.read_text()).get("recipe") or {}).get("data") or {}
    corpus = data.get("corpus")
    if not corpus:
        return set()
    return {corpus if hub_repo_id(corpus) or not Path(corpus).exists() else Path(corpus).name}


def _reference(folder: Path, hub_id: str | None) -> str:
    """The model's page: its Hub repo (given, or the run's hub_model_id), else the method's paper."""
    name = hub_id or (_local_name(folder) if (folder / "training_args.json").is_file() else None)
    return f"https://huggingface.co/{name}" if name and hub_repo_id(name) and not name.startswith(LOCAL_ORG) \
        else PAPER_URL


def model_meta(source: str | Path, *, name: str | None = None, revision: str | None = None,
               max_length: int | None = None, license: str | None = None,
               training_datasets: set[str] | None = None) -> ModelMeta:
    """mteb's `ModelMeta` of a saved Text2Token model (folder or Hub id).

    - `name`: "org/model" as the results should be filed (default: the Hub id; for a folder, the run's
      `hub_model_id`, else `text2token-eval/<parent>-<folder>`); `revision`: default the Hub commit or
      the weights digest.
    - `max_tokens` is the inference length (`config.encode_length`) unless `max_length` overrides it;
      the loader then encodes at that length too.
    - `training_datasets`: the mteb tasks whose data the model saw. Default: none, as Text2Token trains
      unsupervised on raw corpora (the wiki/WordNet texts are no mteb task's split).
    - `license`: default the model card's, when mteb knows it ("other" or a missing card: None).
    - `release_date`: when the weights were saved; `adapted_from`: the original backbone (the card's
      `base_model`, else the config's); `training_datasets`: the corpora of the card and the run record
      (no mteb task's split: Text2Token trains on raw text); `use_instructions`: whether the config holds
      query/document prompts.
    """
    folder, hub_id, revision = _resolve(source, revision)
    config = Text2TokenConfig.from_pretrained(folder)
    if config.model_type != Text2TokenConfig.model_type:
        raise ValueError(f"{source}: model_type {config.model_type!r} is not a Text2Token model")
    name = name or hub_id or _local_name(folder)
    if "/" not in name:
        raise ValueError(f"name={name!r}: mteb names models 'organization/model'")
    card = _read_card(folder)
    license = license or card.get("license")
    if license is not None and license not in MTEB_LICENSES:
        license = None  # mteb refuses license names it does not list (e.g. the card's "other")
    languages = card.get("language") or ["en"]
    languages = [_LANGUAGES[code] for code in ([languages] if isinstance(languages, str) else languages)
                 if code in _LANGUAGES] or None
    base = card.get("base_model")
    base = base[0] if isinstance(base, list) and base else base
    base = base or resolve_lineage(getattr(config.lm_config, "_name_or_path", None), fetch_card=False).base_model
    datasets = card.get("datasets") or []
    if training_datasets is None:
        training_datasets = set(datasets) | _run_corpora(folder)
    n_params, memory_mb = _weight_counts(folder)
    lm = config.lm_config
    length = max_length or config.encode_length
    return ModelMeta(
        # The source rides in a partial, not in loader_kwargs: model_meta.json (a results-repo file)
        # records the kwargs, and a local path has no place there.
        loader=functools.partial(load_encoder, source=str(hub_id or folder.resolve())),
        loader_kwargs={"max_length": length},
        name=name,
        revision=revision,
        release_date=_release_date(folder, hub_id),
        languages=languages,
        n_parameters=n_params,
        # The input embedding matrix (tied or not, the LM head is the same shape and stays frozen).
        n_embedding_parameters=lm.vocab_size * lm.hidden_size,
        memory_usage_mb=memory_mb,
        max_tokens=length,
        embed_dim=lm.hidden_size,
        license=license,
        open_weights=True,
        public_training_code=training_code_url(),
        public_training_data=f"https://huggingface.co/datasets/{datasets[0]}" if datasets else None,
        framework=["PyTorch", "Transformers", "safetensors",
                   *(["Sentence Transformers"] if (folder / "modules.json").is_file() else [])],
        reference=_reference(folder, hub_id),
        similarity_fn_name=getattr(config, "similarity", "cosine"),  # the model's own scoring rule
        # Query/document prompts, not the PromptEOL template (a pooling setting, the same for every text).
        use_instructions=bool(getattr(config, "prompts", None)),
        training_datasets=set(training_datasets or ()),
        adapted_from=base,
        citation=f"{PAPER_BIBTEX}\n\n{library_bibtex(package_version('text2token') or 'unknown')}",
    )


def load_encoder(model_name: str, revision: str | None = None, *, source: str, max_length: int | None = None,
                 device: str | None = None, cache_dir: str | None = None, **kwargs) -> EmbedderEncoder:
    """The loader `ModelMeta.load_model` calls: the model at `source` behind mteb's encoder interface."""
    from ..modeling import Text2TokenModel
    from .embedder import Text2TokenEmbedder

    folder = Path(source) if Path(source).exists() else None
    if folder is None:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(source, revision=revision))
    model = Text2TokenModel.from_pretrained(folder, use_safetensors=True)
    if device is not None:
        model.to(device)
    embedder = Text2TokenEmbedder(model, f"{model_name.replace('/', '--')}-{revision}", max_length)
    return EmbedderEncoder(embedder, cache_dir=cache_dir, show_progress_bar=kwargs.get("show_progress_bar", False))


def register(meta: ModelMeta) -> ModelMeta:
    """Add `meta` to mteb's model registry, so `mteb.get_model(meta.name)` and `mteb.get_model_meta`
    find it in this process (mteb looks names up there before asking the Hub)."""
    from mteb.models.model_implementations import MODEL_REGISTRY

    MODEL_REGISTRY[meta.name] = meta
    return meta


__all__ = ["load_encoder", "model_meta", "register"]
