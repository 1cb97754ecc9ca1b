"""The systems a comparison evaluates, as embedders with names that change when their weights do.

Specs: a saved Text2Token model (folder or Hub id); `untrained` (the backbone wrapped with the same
pooling, no training); `tfidf`; `minilm` (the supervised all-MiniLM-L6-v2 reference).
"""

from __future__ import annotations

from pathlib import Path

from ..backbones import EMBEDDED_DEFAULT, resolve_backbone  # noqa: F401 (re-exported)
from ..devices import AUTO_DTYPE, place_model
from ..digests import weights_digest  # noqa: F401 (re-exported)
from ..modeling import Text2TokenModel
from .embedder import Text2TokenEmbedder  # noqa: F401 (re-exported)

BASELINES = ("untrained", "tfidf", "minilm")


def load_system(spec: str, *, backbone: str = EMBEDDED_DEFAULT, pooling: str = "mean",
                max_length: int | None = None, corpus: list[str] | None = None, mteb_name: str | None = None,
                dtype: str | None = AUTO_DTYPE, allow_cpu: bool = False):
    """An embedder for `spec` (see the module docstring). `corpus` fits TF-IDF (default: the suite).
    A saved Text2Token model's embedder carries its mteb `ModelMeta` (`mteb_meta`, named `mteb_name` when
    given), so its results are filed under that name and revision. A Text2Token model is placed by
    `devices.place_model`: this process's accelerator, in `dtype` (auto: bf16 there, float32 on the CPU)."""
    if spec == "tfidf":
        from .baselines import TfidfEmbedder
        from .offline_tasks import suite_texts

        return TfidfEmbedder(corpus=corpus if corpus is not None else suite_texts())
    if spec == "minilm":
        from .baselines import MiniLMEmbedder

        return MiniLMEmbedder() if max_length is None else MiniLMEmbedder(max_seq_length=max_length)
    if spec == "untrained":
        folder = resolve_backbone(backbone)
        model = Text2TokenModel.from_backbone(folder, pooling=pooling)
        place_model(model, purpose=f"evaluation of {spec}", allow_cpu=allow_cpu, dtype=dtype)
        label = f"untrained-{Path(folder).name if Path(folder).exists() else folder}-{pooling}"
        return Text2TokenEmbedder(model, f"{label}-{weights_digest(folder)}", max_length)
    path = Path(spec)
    if path.exists():
        label = f"{path.parent.name}-{path.name}"
    else:  # a Hub id: fetch the snapshot once, so the weights can be hashed like a local folder's
        from huggingface_hub import snapshot_download

        label, path = spec.replace("/", "--"), Path(snapshot_download(spec))
    model = Text2TokenModel.from_pretrained(path, use_safetensors=True)
    place_model(model, purpose=f"evaluation of {spec}", allow_cpu=allow_cpu, dtype=dtype)
    embedder = Text2TokenEmbedder(model, f"{label}-{weights_digest(path)}", max_length)
    from .mteb_meta import model_meta

    embedder.mteb_meta = model_meta(spec, name=mteb_name, max_length=embedder.max_length)
    return embedder
