"""Sparse retrieval from the embedding's vocabulary distribution, beside dense retrieval.

A text's sparse vector is its top-k tokens under `softmax(W h)`, probabilities renormalised over
those k; a corpus index is a `scipy.sparse` CSR matrix (rows = documents, columns = vocabulary) and
a query scores documents by a sparse dot product with its own top-k vector. The hybrid mixes the
two rankings' scores after a per-query min-max scaling of each: cosines of pooled LLM states crowd
into a narrow band, so raw cosines would hardly move a sum with sparse scores.

`evaluate_manpage_retrieval` runs all three on the offline suite's man-page retrieval task and
reports nDCG@10 (trec_eval's linear gain, like mteb's main score), the index sizes and query times.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .explain import topk_from_embeddings

NDCG_CUTOFF = 10


# ----------------------------------------------------------------------------- index and search
def topk_matrix(ids: np.ndarray, probs: np.ndarray, vocab_size: int) -> sp.csr_matrix:
    """CSR rows from per-row top-k ids and probabilities, renormalised to sum to 1 per row."""
    ids, probs = np.asarray(ids), np.asarray(probs, dtype=np.float64)
    n, k = ids.shape
    data = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    matrix = sp.csr_matrix((data.ravel(), ids.ravel().astype(np.int32), np.arange(0, n * k + 1, k)),
                           shape=(n, vocab_size))
    matrix.sort_indices()
    return matrix


def sparse_vectors(model, embeddings, k: int = 64) -> sp.csr_matrix:
    """Top-k vocabulary vectors of pooled embeddings `h` (see `model.encode`)."""
    ids, probs = topk_from_embeddings(model, embeddings, k)
    return topk_matrix(ids, probs, model.lm_head.weight.shape[0])


def csr_nbytes(matrix: sp.csr_matrix) -> int:
    """Bytes a CSR matrix holds: values, column indices and row pointers."""
    return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)


@dataclass
class SparseIndex:
    """A corpus as top-k vocabulary vectors."""

    matrix: sp.csr_matrix  # [documents, vocab]
    k: int

    @classmethod
    def build(cls, model, texts: Sequence[str], k: int = 64, batch_size: int = 32) -> "SparseIndex":
        embeddings = model.encode(texts, batch_size=batch_size, convert_to_tensor=True)
        return cls(sparse_vectors(model, embeddings, k), k)

    @property
    def nbytes(self) -> int:
        return csr_nbytes(self.matrix)

    def scores(self, queries: sp.csr_matrix) -> np.ndarray:
        """Dot products [queries, documents] of query vectors with every document."""
        return np.asarray((queries @ self.matrix.T).todense(), dtype=np.float32)

    def search(self, queries: sp.csr_matrix, top_n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The `top_n` documents per query, best first: (indices, scores)."""
        scores = self.scores(queries)
        ranked = rank(scores, top_n)
        return ranked, np.take_along_axis(scores, ranked, axis=1)


def dense_scores(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    """Cosine similarities [queries, documents]."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-12)
    d = documents / np.linalg.norm(documents, axis=1, keepdims=True).clip(min=1e-12)
    return (q @ d.T).astype(np.float32)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1]; a constant row becomes zeros."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    return np.divide(scores - low, span, out=np.zeros_like(scores, dtype=np.float64), where=span > 0)


def hybrid_scores(sparse: np.ndarray, dense: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """alpha * minmax(sparse) + (1 - alpha) * minmax(dense): alpha=1 ranks as sparse, alpha=0 as dense."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: must be within [0, 1]")
    return alpha * minmax(sparse) + (1.0 - alpha) * minmax(dense)


def rank(scores: np.ndarray, top_n: int) -> np.ndarray:
    """Column indices of each row's `top_n` highest scores, best first (ties: lower index first)."""
    top_n = min(top_n, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :top_n]


# ----------------------------------------------------------------------------- evaluation
def ndcg_at_k(ranked: np.ndarray, doc_ids: Sequence[str], query_ids: Sequence[str],
              qrels: dict[str, dict[str, int]], k: int = NDCG_CUTOFF) -> float:
    """Mean nDCG@k over queries with at least one relevant document; gain = relevance (trec_eval)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for qid, row in zip(query_ids, ranked):
        relevant = {d: r for d, r in qrels.get(qid, {}).items() if r > 0}
        if not relevant:
            continue
        gains = np.array([relevant.get(doc_ids[i], 0) for i in row[:k]], dtype=np.float64)
        ideal = np.sort(np.fromiter(relevant.values(), dtype=np.float64))[::-1][:k]
        values.append(float(gains @ discounts[: len(gains)]) / float(ideal @ discounts[: len(ideal)]))
    if not values:
        raise ValueError("no query has a relevant document in qrels")
    return float(np.mean(values))


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class RetrievalComparison:
    """Sparse vs dense vs hybrid on one retrieval task. Times are seconds for all queries at once."""

    num_documents: int
    num_queries: int
    k: int
    alpha: float
    ndcg_dense: float
    ndcg_sparse: float
    ndcg_hybrid: float
    sparse_index_bytes: int
    dense_index_bytes: int
    dense_search_s: float
    sparse_search_s: float
    query_encode_s: float | None = None  # the forward pass both need
    query_projection_s: float | None = None  # sparse only: W h, softmax and top-k

    @property
    def quality_ratio(self) -> float:
        return self.ndcg_sparse / self.ndcg_dense if self.ndcg_dense else float("nan")

    @property
    def size_ratio(self) -> float:
        return self.sparse_index_bytes / self.dense_index_bytes

    @property
    def search_time_ratio(self) -> float:
        return self.sparse_search_s / self.dense_search_s

    @property
    def end_to_end_time_ratio(self) -> float | None:
        """(encode + project + sparse search) / (encode + dense search), when encode times are known."""
        if self.query_encode_s is None or self.query_projection_s is None:
            return None
        return ((self.query_encode_s + self.query_projection_s + self.sparse_search_s)
                / (self.query_encode_s + self.dense_search_s))


def compare_retrieval(doc_embeddings: np.ndarray, query_embeddings: np.ndarray, doc_sparse: sp.csr_matrix,
                      query_sparse: sp.csr_matrix, doc_ids: Sequence[str], query_ids: Sequence[str],
                      qrels: dict[str, dict[str, int]], *, k: int, alpha: float = 0.5,
                      repeats: int = 5) -> RetrievalComparison:
    """Score and time the three retrievers on precomputed vectors (documents prepared beforehand, as
    an index would be: dense rows unit-normalised, sparse rows in CSR)."""
    doc_unit = doc_embeddings / np.linalg.norm(doc_embeddings, axis=1, keepdims=True).clip(min=1e-12)
    index = SparseIndex(doc_sparse, k)

    def dense_search():
        return rank(dense_scores(query_embeddings, doc_unit), NDCG_CUTOFF)

    def sparse_search():
        return rank(index.scores(query_sparse), NDCG_CUTOFF)

    dense = dense_scores(query_embeddings, doc_unit)
    sparse = index.scores(query_sparse)
    hybrid = hybrid_scores(sparse, dense, alpha)
    ndcg = {name: ndcg_at_k(rank(s, NDCG_CUTOFF), doc_ids, query_ids, qrels)
            for name, s in (("dense", dense), ("sparse", sparse), ("hybrid", hybrid))}
    return RetrievalComparison(
        num_documents=len(doc_ids), num_queries=len(query_ids), k=k, alpha=alpha,
        ndcg_dense=ndcg["dense"], ndcg_sparse=ndcg["sparse"], ndcg_hybrid=ndcg["hybrid"],
        sparse_index_bytes=index.nbytes, dense_index_bytes=int(doc_embeddings.shape[0] * doc_embeddings.shape[1] * 4),
        dense_search_s=_best_time(dense_search, repeats), sparse_search_s=_best_time(sparse_search, repeats),
    )


def evaluate_manpage_retrieval(model, k: int = 64, alpha: float = 0.5, batch_size: int = 32,
                               max_queries: int | None = None) -> RetrievalComparison:
    """The comparison on `OfflineManPageRetrieval` (500 man pages, 300 one-line queries), encoding
    each text once: dense uses `h`, sparse the top-k of `softmax(W h)` of the same `h`."""
    from .evaluation.offline_tasks import read_snapshot  # imports mteb: only when evaluating

    corpus = read_snapshot("manpage_retrieval", "corpus")
    queries = read_snapshot("manpage_retrieval", "queries")
    if max_queries is not None:
        queries = queries.select(range(min(max_queries, len(queries))))
    qrels: dict[str, dict[str, int]] = {}
    table = read_snapshot("manpage_retrieval", "qrels")
    for qid, did, score in zip(table["query-id"], table["corpus-id"], table["score"]):
        qrels.setdefault(qid, {})[did] = int(score)

    doc_h = model.encode(corpus["text"], batch_size=batch_size, convert_to_tensor=True)
    start = time.perf_counter()
    query_h = model.encode(queries["text"], batch_size=batch_size, convert_to_tensor=True)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    query_sparse = sparse_vectors(model, query_h, k)
    projection_s = time.perf_counter() - start
    result = compare_retrieval(doc_h.numpy(), query_h.numpy(), sparse_vectors(model, doc_h, k), query_sparse,
                               corpus["id"], queries["id"], qrels, k=k, alpha=alpha)
    result.query_encode_s, result.query_projection_s = encode_s, projection_s
    return result


def render_comparison(result: RetrievalComparison, task: str = "OfflineManPageRetrieval") -> str:
    """A plain-text report of a `RetrievalComparison`."""
    r = result
    lines = [
        f"{task}: {r.num_queries} queries over {r.num_documents} documents; sparse k={r.k}, hybrid alpha={r.alpha}",
        f"  {'retriever':<22} {'nDCG@10':>8} {'vs dense':>9}",
        f"  {'dense (cosine of h)':<22} {r.ndcg_dense:>8.4f} {1.0:>9.3f}",
        f"  {f'sparse (top-{r.k} vocab)':<22} {r.ndcg_sparse:>8.4f} {r.quality_ratio:>9.3f}",
        f"  {f'hybrid (alpha={r.alpha})':<22} {r.ndcg_hybrid:>8.4f} "
        f"{(r.ndcg_hybrid / r.ndcg_dense if r.ndcg_dense else float('nan')):>9.3f}",
        f"  index bytes: sparse CSR {r.sparse_index_bytes:,} vs dense float32 {r.dense_index_bytes:,}"
        f" (ratio {r.size_ratio:.3f})",
        f"  search time, all queries: sparse {1e3 * r.sparse_search_s:.2f} ms vs dense {1e3 * r.dense_search_s:.2f} ms"
        f" (ratio {r.search_time_ratio:.2f})",
    ]
    if r.end_to_end_time_ratio is not None:
        lines.append(f"  with the query forward pass ({1e3 * r.query_encode_s:.0f} ms) and, for sparse, the vocabulary"
                     f" projection + top-k ({1e3 * r.query_projection_s:.1f} ms): ratio {r.end_to_end_time_ratio:.3f}")
    return "\n".join(lines)
