import numpy as np
import pytest
import torch

from text2token.sparse_retrieval import (SparseIndex, compare_retrieval, csr_nbytes, dense_scores,
                                         evaluate_manpage_retrieval, hybrid_scores, minmax, ndcg_at_k, rank,
                                         render_comparison, sparse_vectors, topk_matrix)

VOCAB = 20


def peaked(rows: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids and (unnormalised) probabilities, k = 3, from {token: weight} rows."""
    ids = np.array([list(r) for r in rows])
    probs = np.array([list(r.values()) for r in rows], dtype=np.float32)
    return ids, probs


DOCS = peaked([{1: 0.5, 2: 0.3, 3: 0.2}, {4: 0.6, 5: 0.2, 6: 0.2}, {7: 0.4, 8: 0.4, 1: 0.2}])


def test_topk_matrix_renormalises_rows_into_csr():
    matrix = topk_matrix(*peaked([{3: 0.2, 1: 0.1, 9: 0.1}]), VOCAB)
    assert matrix.shape == (1, VOCAB) and matrix.nnz == 3
    assert matrix[0, 3] == pytest.approx(0.5) and matrix[0, 1] == pytest.approx(0.25)
    assert matrix.sum() == pytest.approx(1.0)
    assert csr_nbytes(matrix) == 3 * 4 + 3 * 4 + 2 * 4  # float32 values, int32 columns, int32 row pointers


def test_search_returns_the_document_sharing_the_query_tokens():
    index = SparseIndex(topk_matrix(*DOCS, VOCAB), k=3)
    queries = topk_matrix(*peaked([{5: 0.5, 4: 0.4, 11: 0.1}, {8: 0.5, 7: 0.3, 12: 0.2}]), VOCAB)
    found, scores = index.search(queries, top_n=2)
    assert found[:, 0].tolist() == [1, 2]
    # query 1 . doc 1 = 0.5*0.2 + 0.4*0.6, and it shares nothing with docs 0 and 2
    assert scores[0, 0] == pytest.approx(0.5 * 0.2 + 0.4 * 0.6) and scores[0, 1] == 0.0


def test_hybrid_at_the_ends_is_dense_or_sparse():
    rng = np.random.default_rng(0)
    sparse, dense = rng.random((5, 30)), rng.uniform(0.8, 0.95, (5, 30))
    assert np.array_equal(rank(hybrid_scores(sparse, dense, alpha=0.0), 30), rank(dense, 30))
    assert np.array_equal(rank(hybrid_scores(sparse, dense, alpha=1.0), 30), rank(sparse, 30))
    np.testing.assert_allclose(hybrid_scores(sparse, dense, alpha=0.0), minmax(dense))
    mixed = hybrid_scores(sparse, dense, alpha=0.5)
    assert not np.array_equal(rank(mixed, 30), rank(dense, 30)) and mixed.min() >= 0 and mixed.max() <= 1
    with pytest.raises(ValueError, match="alpha"):
        hybrid_scores(sparse, dense, alpha=1.5)


def test_ndcg_at_10_by_hand():
    doc_ids = [f"d{i}" for i in range(12)]
    ranked = np.array([list(range(12)), [5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11], list(range(11, -1, -1))])
    qrels = {"a": {"d0": 1}, "b": {"d0": 1}, "c": {"d0": 1}, "unjudged": {}}
    # a: rank 1 -> 1; b: rank 2 -> 1/log2(3); c: rank 12, beyond the cutoff -> 0
    expected = (1 + 1 / np.log2(3) + 0) / 3
    assert ndcg_at_k(ranked, doc_ids, ["a", "b", "c"], qrels) == pytest.approx(expected)
    graded = {"q": {"d1": 2, "d0": 1}}  # ideal order d1, d0; ranked d0, d1
    assert ndcg_at_k(ranked[:1], doc_ids, ["q"], graded) == pytest.approx(
        (1 + 2 / np.log2(3)) / (2 + 1 / np.log2(3)))


def test_comparison_ratios_on_a_constructed_corpus():
    doc_ids, query_ids = ["x", "y", "z"], ["qx", "qy"]
    qrels = {"qx": {"x": 1}, "qy": {"y": 1}}
    doc_h = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]], dtype=np.float32)
    query_h = np.array([[0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0]], dtype=np.float32)  # dense: both right at rank 1
    doc_sparse = topk_matrix(*DOCS, VOCAB)
    query_sparse = topk_matrix(*peaked([{7: 0.6, 1: 0.3, 2: 0.1}, {4: 0.7, 5: 0.2, 6: 0.1}]), VOCAB)

    result = compare_retrieval(doc_h, query_h, doc_sparse, query_sparse, doc_ids, query_ids, qrels, k=3, alpha=1.0,
                               repeats=2)

    # sparse: qx ranks z first (token 7) then x, qy finds y first
    assert result.ndcg_dense == 1.0
    assert result.ndcg_sparse == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert result.ndcg_hybrid == pytest.approx(result.ndcg_sparse), "alpha=1 ranks as sparse"
    assert result.quality_ratio == pytest.approx(result.ndcg_sparse / result.ndcg_dense)
    assert result.sparse_index_bytes == 9 * 4 + 9 * 4 + 4 * 4 and result.dense_index_bytes == 3 * 4 * 4
    assert result.size_ratio == pytest.approx(88 / 48)
    assert result.search_time_ratio == pytest.approx(result.sparse_search_s / result.dense_search_s)
    assert result.end_to_end_time_ratio is None
    assert "sparse (top-3 vocab)" in render_comparison(result)


def test_dense_scores_are_cosines():
    scores = dense_scores(np.array([[3.0, 4.0]]), np.array([[6.0, 8.0], [0.0, 2.0]]))
    np.testing.assert_allclose(scores, [[1.0, 0.8]], rtol=1e-6)


def test_model_vectors_and_the_manpage_evaluation(tiny_model):
    texts = ["The cat sat on the mat.", "ls lists directory contents"]
    vectors = sparse_vectors(tiny_model, tiny_model.encode(texts, convert_to_tensor=True), k=5)
    assert vectors.shape == (2, tiny_model.lm_head.weight.shape[0]) and vectors.nnz == 10
    np.testing.assert_allclose(np.asarray(vectors.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
    top = [tiny_model.tokenizer.decode([i]) for i in np.argsort(-vectors[0].toarray()[0], kind="stable")[:5]]
    assert sorted(top) == sorted(t for t, _ in tiny_model.explain(texts[:1], k=5)[0])

    tiny_model.config.max_length = 16  # a cheap pass over the 500 documents
    result = evaluate_manpage_retrieval(tiny_model, k=8, alpha=0.5, batch_size=128, max_queries=12)
    assert (result.num_documents, result.num_queries) == (500, 12)
    assert all(0.0 <= v <= 1.0 for v in (result.ndcg_dense, result.ndcg_sparse, result.ndcg_hybrid))
    assert result.sparse_index_bytes == 500 * 8 * 8 + 501 * 4
    assert result.dense_index_bytes == 500 * tiny_model.config.lm_config.hidden_size * 4
    assert result.end_to_end_time_ratio > 0 and torch.is_grad_enabled()
