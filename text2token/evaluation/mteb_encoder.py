"""Wrap any embedder (``encode(texts, batch_size, normalize) -> np.ndarray`` plus
a ``name``) as an mteb 2.x encoder, with de-duplication and an embedding cache.

Why the de-duplication matters: mteb's STS evaluator encodes ``sentence1`` and
``sentence2`` of every pair, i.e. 2,450 texts for 50 Lee documents. Keeping
embeddings in memory by text hash brings that back to 50 model calls.

The optional on-disk cache stores, per system, ``.npz`` shards holding the
sha256 of each text and its float32 embedding (no pickle). It trusts the
embedder's ``name`` to identify its weights: change the name when the weights
change, or point ``cache_dir`` elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from mteb.models import ModelMeta
from mteb.models.abs_encoder import AbsEncoder
from tqdm.auto import tqdm

from ..distributed import from_main_process, gather_objects, is_main_process, rank, world_size

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.types import PromptType
    from torch.utils.data import DataLoader


class Embedder(Protocol):
    name: str

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False) -> np.ndarray: ...


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mteb_model_name(name: str) -> str:
    """mteb requires 'organization/model' names; bare names get a fixed org."""
    return name if "/" in name else f"text2token-eval/{name}"


class EmbeddingCache:
    """Embeddings of one system on disk, keyed by text sha256.

    Each ``add`` writes one new shard atomically (temp file + rename), so an
    interrupted run never leaves a half-written shard that later loads.
    """

    def __init__(self, root: str | Path, system_name: str):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", system_name).strip("_")[:80]
        digest = hashlib.sha256(system_name.encode()).hexdigest()[:12]
        self.dir = Path(root) / f"{safe}-{digest}"  # digest: distinct names never collide
        self._vectors: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.dir.glob("shard-*.npz")):
                with np.load(shard, allow_pickle=False) as data:
                    for key, vec in zip(data["keys"].tolist(), data["embeddings"]):
                        self._vectors[key] = vec
        return self._vectors

    def get(self, key: str) -> np.ndarray | None:
        return self._load().get(key)

    def add(self, keys: list[str], embeddings: np.ndarray) -> None:
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        shard = self.dir / f"shard-{hashlib.sha256(''.join(keys).encode()).hexdigest()[:16]}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, keys=np.array(keys, dtype="U64"), embeddings=embeddings.astype(np.float32))
        os.replace(tmp, shard)
        vectors = self._load()
        for key, vec in zip(keys, embeddings):
            vectors[key] = vec

    def __len__(self) -> int:
        return len(self._load())


class EmbedderEncoder(AbsEncoder):
    """mteb encoder around a plain embedder.

    Texts are de-duplicated, looked up in memory and on disk, and only the
    misses reach the embedder, longest first (similar lengths share a batch,
    so padding is small) before the original order is restored. Under a
    multi-process launch the misses are split across ranks by batch (see
    `_encode_missing`); every rank ends with every vector.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_dir: str | Path | None = None,
        model_meta: ModelMeta | None = None,
        show_progress_bar: bool = True,
        save_every: int = 4096,
    ):
        self.model = embedder
        self.save_every = save_every  # texts encoded between two saves of the disk cache
        self.show_progress_bar = show_progress_bar
        self.disk_cache = EmbeddingCache(cache_dir, embedder.name) if cache_dir else None
        self._memory: dict[str, np.ndarray] = {}
        # An embedder may carry its own ModelMeta (`mteb_meta`: a saved Text2Token model's, see mteb_meta.py).
        self.mteb_model_meta = model_meta or getattr(embedder, "mteb_meta", None) or self.default_meta(embedder)

    @staticmethod
    def default_meta(embedder: Embedder) -> ModelMeta:
        return ModelMeta(
            loader=None,
            name=mteb_model_name(embedder.name),
            revision=getattr(embedder, "revision", None) or "no_revision_available",
            release_date=None,
            languages=["eng-Latn"],
            n_parameters=getattr(embedder, "n_parameters", None),
            memory_usage_mb=None,
            max_tokens=getattr(embedder, "max_length", None),
            embed_dim=getattr(embedder, "dim", None),
            license=None,
            open_weights=None,
            public_training_code=None,
            public_training_data=None,
            framework=["PyTorch"],
            similarity_fn_name=getattr(embedder, "similarity", "cosine"),
            use_instructions=False,
            training_datasets=None,
        )

    def encode(
        self,
        inputs: DataLoader,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        return self.encode_texts(
            texts,
            batch_size=int(kwargs.get("batch_size", 32)),
            show_progress_bar=kwargs.get("show_progress_bar", self.show_progress_bar),
            desc=task_metadata.name,
            prompt_name=self.prompt_name(prompt_type),
        )

    def prompt_name(self, prompt_type: PromptType | None) -> str | None:
        """mteb's query/document side as the embedder's prompt name, when it has a prompt for it."""
        name = getattr(prompt_type, "value", prompt_type)
        return name if name and name in (getattr(self.model, "prompts", None) or {}) else None

    def encode_texts(
        self, texts: list[str], *, batch_size: int = 32, show_progress_bar: bool = False, desc: str = "",
        prompt_name: str | None = None,
    ) -> np.ndarray:
        # A text under an instruction is another input: its vectors are cached apart, keyed by the instruction.
        prompt = self.model.prompts[prompt_name] if prompt_name else None
        keys = [text_key(t if prompt is None else f"{prompt}\x00{t}") for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key in self._memory or key in missing:
                continue
            cached = self.disk_cache.get(key) if self.disk_cache else None
            if cached is not None:
                self._memory[key] = cached
            else:
                missing[key] = text
        if world_size() > 1:
            # Every rank gets the same texts from mteb; the main process's view of what is missing
            # decides, so all ranks run the same batches and collectives.
            by_key = dict(zip(keys, texts))
            missing = {key: by_key[key] for key in from_main_process(list(missing))}
        if missing:
            self._encode_missing(missing, batch_size, show_progress_bar, desc, prompt_name)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_missing(self, missing: dict[str, str], batch_size: int, show: bool, desc: str,
                        prompt_name: str | None = None) -> None:
        """Encode `missing` in length-sorted batches (the same batches whatever the number of
        processes): under a multi-process launch rank r takes batches r, r + N, ... of each window,
        the ranks exchange their vectors after the window, and the main process saves the window to
        the disk cache, so an interrupted run resumes from the last saved window."""
        order = sorted(missing, key=lambda k: (-len(missing[k]), k))
        ranks, me = world_size(), rank()
        window = batch_size * ranks * max(1, -(-self.save_every // (batch_size * ranks)))
        bar = tqdm(total=len(order), desc=f"encode {desc}".strip(), unit="text",
                   disable=not show or not is_main_process())
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            batches = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            mine = [(b, self._encode_batch([missing[k] for k in b], batch_size, prompt_name))
                    for b in batches[me::ranks]]
            keys, vecs = [], []
            for part in gather_objects(mine):
                for batch_keys, batch_vecs in part:
                    keys += batch_keys
                    vecs.append(batch_vecs)
            for key, vec in zip(keys, np.concatenate(vecs)):
                self._memory[key] = vec
            if self.disk_cache is not None and is_main_process():
                self.disk_cache.add(keys, np.concatenate(vecs))
            bar.update(len(chunk))
        bar.close()

    def _encode_batch(self, texts: list[str], batch_size: int, prompt_name: str | None = None) -> np.ndarray:
        # Only with a prompt: baselines (TF-IDF, MiniLM) take no prompt_name.
        options = {"prompt_name": prompt_name} if prompt_name else {}
        vecs = np.asarray(self.model.encode(texts, batch_size=batch_size, normalize=False, **options),
                          dtype=np.float32)
        if vecs.shape[0] != len(texts):
            raise ValueError(f"{self.model.name} returned {vecs.shape[0]} rows for {len(texts)} texts")
        return vecs
