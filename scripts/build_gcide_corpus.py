#!/usr/bin/env python3
"""Build the GCIDE training corpus: dictionary prose and literary quotations, decontaminated.

Reads GCIDE (the GNU Collaborative International Dictionary of English: Webster's 1913 with later
additions) from Debian's ``dict-gcide`` package and writes ``corpus.parquet``, ``MANIFEST.json`` and
``LICENSE.gcide`` into ``--out`` (default ``$TEXT2TOKEN_CACHE/corpora/gcide``, where ``corpus: gcide``
finds it). GCIDE is GPL-2.0-or-later, so the corpus is built on the user's machine, never shipped.

Texts come in five kinds: ``definition`` (one sense), ``phrase`` (a phrase and its definition),
``note``, ``quotation`` (an illustrative quotation from English literature, attribution removed) and
``entry`` (an entry's definitions joined: paragraph-length prose). Quotations from the Bible are
dropped, and so is any text sharing an 8-word run with a text of the offline evaluation suite
(its bitext task is KJV Proverbs). The output is byte-for-byte reproducible for a given package
version and pyarrow version.

Usage:
    python scripts/build_gcide_corpus.py                      # fetches the pinned .deb
    python scripts/build_gcide_corpus.py --package-dir DIR    # already extracted
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from snapshot_files import ZSTD_LEVEL, build_from_package, package_version, sha256_file, write_parquet, write_text

PACKAGE = "dict-gcide"
DEFAULT_PACKAGE_VERSION = "0.48.5+nmu2"
DICT_FILE = Path("usr/share/dictd/gcide.dict.dz")
INDEX_FILE = Path("usr/share/dictd/gcide.index")
COPYRIGHT_FILE = Path("usr/share/doc/dict-gcide/copyright")
CHANGELOG_FILE = Path("usr/share/doc/dict-gcide/changelog.Debian.gz")
REPO = Path(__file__).resolve().parents[1]
EVAL_SUITE = REPO / "text2token" / "resources" / "eval_suite"

SEED = 0
REQUESTED = {"definition": 25_000, "phrase": 5_000, "note": 2_000, "quotation": 10_000, "entry": 8_000}
MIN_CHARS = 40
ENTRY_MIN_CHARS = 300
ENTRY_MAX_CHARS = 1000
SHINGLE = 8

SCHEMA = pa.schema([("text", pa.string()), ("kind", pa.string()), ("headword", pa.string())])

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_WS = re.compile(r"\s+")
# A line that only names a source or a usage label: "[1913 Webster]", "[Obs.]" (GCIDE sometimes runs
# the next headword onto a source line, so anything after the bracket goes too).
_TAG_LINE = re.compile(r"^\s*\[[^\]]*\].*$")
_SHORT_BRACKET = re.compile(r"\[[^\[\]]{1,25}\]")
_SENSE_NUMBER = re.compile(r"^\d+(?:\.\s*|\s+)(?:\([^)]{1,30}\)\s*)*")
_LABEL = re.compile(r"^(?:\([^)]{1,30}\)\s*)+")
# An attribution starts with "--" and a capital or a digit ("--Shak.", "--2 Kings iv. 3.").
_ATTRIBUTION = re.compile(r"\s*--\s?[A-Z0-9].*$", re.S)
_HEADER = re.compile(r"^[^\\\n]*\\[^\\]*\\\s*(?:\([^)]*\)\s*)?,?\s*")
_POS = re.compile(r"^(?:(?:[a-z]{1,5}\.\s*)+[,;&]?\s*|pl\.\s*\{[^}]*\}[.,;]?\s*)")
_WORD = re.compile(r"[a-z0-9]+")
_BIBLE_BOOKS = (
    "Gen|Ex|Exod|Lev|Num|Deut|Josh|Judg|Ruth|Sam|Kings|Chron|Ezra|Neh|Esth|Job|Ps|Psa|Prov|Eccl|Eccles|"
    "Cant|Song|Isa|Jer|Lam|Ezek|Dan|Hos|Joel|Amos|Obad|Jonah|Mic|Nah|Hab|Zeph|Hag|Zech|Mal|Matt|Mark|"
    "Luke|John|Acts|Rom|Cor|Gal|Eph|Phil|Col|Thess|Tim|Tit|Titus|Philem|Heb|James|Jas|Pet|Jude|Rev|"
    "Ecclus|Wisd|Tob|Judith|Macc|Bar"
)
# A Bible reference: a book, then a roman-numeral chapter ("--Prov. xv. 1.", "--1 Cor. xiii. 4").
_BIBLE_REF = re.compile(rf"--\s?(?:[1-3]\s)?(?:{_BIBLE_BOOKS})\.?\s+[ivxlc]+\.", re.I)


def decode_b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def iter_entries(package_dir: Path):
    """(headword, entry text) for each distinct entry, in file order; dictd metadata entries skipped."""
    body = gzip.decompress((package_dir / DICT_FILE).read_bytes())
    spans = {}
    for number, line in enumerate((package_dir / INDEX_FILE).read_text(encoding="utf-8").splitlines(), 1):
        try:
            headword, offset, length = line.split("\t")
        except ValueError:
            raise ValueError(f"{INDEX_FILE}:{number}: expected 'headword<TAB>offset<TAB>length'") from None
        if headword.startswith("00-database"):
            continue
        spans.setdefault((decode_b64(offset), decode_b64(length)), headword)
    for (offset, length), headword in sorted(spans.items()):
        # Three stray Windows-1252 bytes in 40 MB of UTF-8: replaced, and the texts holding them dropped.
        yield headword, body[offset:offset + length].decode("utf-8", errors="replace")


def clean(text: str) -> str:
    """Flatten markup: {cross refs} lose their braces, short [labels] go, whitespace folds."""
    text = _SHORT_BRACKET.sub(" ", text.replace("{", "").replace("}", ""))
    return _WS.sub(" ", text).strip()


def is_prose(text: str) -> bool:
    return len(text) >= MIN_CHARS and not any(c in text for c in "[]\\|\ufffd")


def strip_header(paragraph: str) -> str:
    """The first paragraph without 'Word \\Pron\\, pos. [etymology]': its definition, if any."""
    text = _HEADER.sub("", _WS.sub(" ", paragraph), count=1)
    while True:
        stripped = text.lstrip(" ,;")
        if stripped.startswith("["):
            depth, end = 0, None
            for i, char in enumerate(stripped):
                depth += char == "["
                depth -= char == "]"
                if depth == 0:
                    end = i + 1
                    break
            if end is None:
                return ""
            stripped = stripped[end:]
        else:
            stripped = _POS.sub("", stripped, count=1)
        if stripped == text:
            return text
        text = stripped


def parse_entry(entry: str) -> tuple[list[tuple[str, str]], int]:
    """(kind, text) for each usable paragraph of one entry, in order; and how many Bible quotations went."""
    lines = [line for line in entry.splitlines() if not _TAG_LINE.match(line)]
    paragraphs = [p for p in re.split(r"\n\s*\n", "\n".join(lines)) if p.strip()]
    out, bible = [], 0
    for number, paragraph in enumerate(paragraphs):
        indent = len(paragraph) - len(paragraph.lstrip(" "))
        first = paragraph.strip()
        if indent >= 6:
            if _BIBLE_REF.search(paragraph):
                bible += 1
                continue
            kind, text = "quotation", _ATTRIBUTION.sub("", first)
        elif number == 0:
            kind, text = "definition", _SENSE_NUMBER.sub("", _LABEL.sub("", strip_header(first)))
        elif first.startswith("Note:"):
            kind, text = "note", first[len("Note:"):]
        elif first.startswith("{"):
            kind, text = "phrase", first
        elif first[:1].isdigit():
            kind, text = "definition", _SENSE_NUMBER.sub("", first)
        else:
            continue  # synonyms, usage lists, continuation fragments
        if kind != "quotation":
            text = _ATTRIBUTION.sub("", _LABEL.sub("", text.strip()))
        text = clean(text)
        if is_prose(text):
            out.append((kind, text))
    return out, bible


def entry_text(parts: list[tuple[str, str]]) -> str | None:
    """An entry's definitions joined into one paragraph, cut at a word boundary; None when too short."""
    text = " ".join(t for kind, t in parts if kind == "definition")
    if len(text) < ENTRY_MIN_CHARS:
        return None
    if len(text) > ENTRY_MAX_CHARS:
        text = text[:ENTRY_MAX_CHARS].rsplit(" ", 1)[0]
    return text


def shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def eval_shingles(eval_suite: Path) -> tuple[set, list[str]]:
    """8-word runs of every string cell in the evaluation suite's parquet files."""
    seen, files = set(), []
    for path in sorted(eval_suite.rglob("*.parquet")):
        table = pq.read_table(path)
        for name in table.column_names:
            if pa.types.is_string(table.schema.field(name).type):
                for value in table.column(name).to_pylist():
                    if value:
                        seen |= shingles(value)
        files.append(path.relative_to(eval_suite).as_posix())
    if not files:
        raise FileNotFoundError(f"{eval_suite}: no evaluation-suite parquet files to decontaminate against")
    return seen, files


def collect(package_dir: Path, eval_suite: Path) -> tuple[list[dict], dict]:
    """Every usable text, deduplicated (first occurrence kept) and decontaminated; plus the counts."""
    forbidden, eval_files = eval_shingles(eval_suite)
    rows, seen = [], set()
    stats = {"entries": 0, "bible_quotations_dropped": 0, "eval_overlap_dropped": {}}
    for headword, entry in iter_entries(package_dir):
        stats["entries"] += 1
        parts, bible = parse_entry(entry)
        stats["bible_quotations_dropped"] += bible
        joined = entry_text(parts)
        for kind, text in parts + ([("entry", joined)] if joined else []):
            if text in seen:
                continue
            seen.add(text)
            if shingles(text) & forbidden:
                stats["eval_overlap_dropped"][kind] = stats["eval_overlap_dropped"].get(kind, 0) + 1
                continue
            rows.append({"text": text, "kind": kind, "headword": headword})
    stats["eval_suite_files"] = eval_files
    return rows, stats


def sample_rows(rows: list[dict], seed: int) -> list[dict]:
    rng = random.Random(seed)
    picked = []
    for kind, wanted in REQUESTED.items():
        pool = [r for r in rows if r["kind"] == kind]
        picked += rng.sample(pool, min(wanted, len(pool)))
    rng.shuffle(picked)
    return picked


def by_kind(rows: list[dict]) -> dict:
    return {kind: sum(r["kind"] == kind for r in rows) for kind in REQUESTED}


def default_out() -> Path:
    # The rule of text2token.cache.cache_root, restated so the builder runs without the project installed.
    return Path(os.environ.get("TEXT2TOKEN_CACHE", Path.home() / ".cache" / "text2token")) / "corpora" / "gcide"


def build(package_dir: Path, out: Path, eval_suite: Path = EVAL_SUITE) -> dict:
    rows, stats = collect(package_dir, eval_suite)
    picked = sample_rows(rows, SEED)
    out.mkdir(parents=True, exist_ok=True)
    parquet_path = out / "corpus.parquet"
    write_parquet(picked, SCHEMA, parquet_path)
    copyright_text = (package_dir / COPYRIGHT_FILE).read_text(encoding="utf-8")
    write_text(out / "LICENSE.gcide", f"GCIDE license notice, copied from Debian's {PACKAGE} package "
                                      f"({COPYRIGHT_FILE.as_posix()}).\n\n{copyright_text}")
    manifest = {
        "name": "gcide",
        "description": "GCIDE (Webster's 1913 and later additions): definitions, phrases, notes, "
                       "literary quotations and whole entries (English).",
        "source": {
            "upstream": "GNU Collaborative International Dictionary of English",
            "debian_package": PACKAGE,
            "debian_version": package_version(package_dir, CHANGELOG_FILE),
            "files": {p.as_posix(): sha256_file(package_dir / p) for p in (DICT_FILE, INDEX_FILE)},
        },
        "license": {"spdx": "GPL-2.0-or-later", "notice_file": "LICENSE.gcide",
                    "note": "built on the user's machine from the Debian package; not shipped with text2token"},
        "processing": {
            "markup": "source lines ([1913 Webster]) and short [labels] removed, {braces} dropped, "
                      "attributions (--Author) cut, whitespace folded",
            "min_chars": MIN_CHARS,
            "entry": f"an entry's definitions joined, kept from {ENTRY_MIN_CHARS} chars, cut at "
                     f"{ENTRY_MAX_CHARS} on a word boundary",
            "dedup": "exact text, first occurrence in dictionary order",
            "decontamination": f"dropped: quotations with a Bible reference, and any text sharing a "
                               f"{SHINGLE}-word run with a string of the evaluation suite",
            "entries_read": stats["entries"],
            "bible_quotations_dropped": stats["bible_quotations_dropped"],
            "eval_overlap_dropped": stats["eval_overlap_dropped"],
            "eval_suite_files": stats["eval_suite_files"],
        },
        "sampling": {"rng": "python random.Random(seed): sample each kind in turn, then shuffle together",
                     "seed": SEED, "requested": REQUESTED, "available": by_kind(rows)},
        "output": {"file": "corpus.parquet", "sha256": sha256_file(parquet_path),
                   "bytes": parquet_path.stat().st_size, "columns": SCHEMA.names,
                   "compression": f"zstd level {ZSTD_LEVEL}", "rows": len(picked), "rows_by_kind": by_kind(picked)},
        "built_with": {"python": platform.python_version(), "pyarrow": pa.__version__},
        "rebuild_command": "python scripts/build_gcide_corpus.py",
    }
    write_text(out / "MANIFEST.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package-dir", type=Path,
                    help="extracted dict-gcide tree (dpkg -x / dpkg-deb -R); fetched with apt-get if omitted")
    ap.add_argument("--package-version", default=DEFAULT_PACKAGE_VERSION,
                    help="Debian version to fetch when --package-dir is omitted")
    ap.add_argument("--eval-suite", type=Path, default=EVAL_SUITE,
                    help="folder of evaluation parquet files the corpus must not overlap")
    ap.add_argument("--out", type=Path, default=None, help="default: $TEXT2TOKEN_CACHE/corpora/gcide")
    args = ap.parse_args(argv)
    out = args.out or default_out()
    build_from_package(lambda tree: build(tree, out, args.eval_suite),
                       PACKAGE, args.package_version, args.package_dir, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
