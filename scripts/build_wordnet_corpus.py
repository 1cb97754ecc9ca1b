#!/usr/bin/env python3
"""Build the frozen WordNet-glosses training corpus snapshot.

Reads the Princeton WordNet 3.0 data files shipped in Debian's ``wordnet-base``
package and writes ``corpus.parquet``, ``MANIFEST.json`` and ``LICENSE.wordnet``
into ``--out``. The output is byte-for-byte reproducible for a given package
version, Python ``random`` implementation and pyarrow version.

Usage:
    python scripts/build_wordnet_corpus.py                      # fetches the .deb
    python scripts/build_wordnet_corpus.py --package-dir DIR    # already extracted

Needs only the standard library and pyarrow (plus apt-get/dpkg when fetching).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
from pathlib import Path

import pyarrow as pa

from snapshot_files import ZSTD_LEVEL, build_from_package, package_version, sha256_file, write_parquet, write_text

PACKAGE = "wordnet-base"
# Pinned so that a plain rebuild fetches exactly the data the snapshot came from.
DEFAULT_PACKAGE_VERSION = "1:3.0-37"
UPSTREAM = "Princeton WordNet 3.0"

# File order defines the stable "first occurrence" order used for de-duplication.
DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
WORDNET_DIR = Path("usr/share/wordnet")
COPYRIGHT_FILE = Path("usr/share/doc/wordnet-base/copyright")
CHANGELOG_FILE = Path("usr/share/doc/wordnet-base/changelog.Debian.gz")

SEED = 0
N_DEFINITIONS = 20_000
N_EXAMPLES = 5_000
MIN_CHARS = 15

DEFAULT_OUT = Path("text2token/resources/corpora/wordnet_glosses")
REBUILD_COMMAND = "python scripts/build_wordnet_corpus.py"

# A definition ends where the first quoted example starts. Most glosses use
# '; "' but a few dozen use ':"' or ';"' instead, so accept either separator.
_EXAMPLE_START = re.compile(r'[;:]\s*"')
# Examples are normally separated by '; "', occasionally by '", "' or '" "'.
_CHUNK_SPLIT = re.compile(r';\s*(?=")')
_WS = re.compile(r"\s+")

SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("kind", pa.string()),
        ("pos", pa.string()),
        ("synset_offset", pa.string()),
    ]
)


def normalise(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _examples_from_chunk(chunk: str) -> list[str]:
    """Quoted sentences in one chunk; tolerates the handful of unbalanced quotes."""
    quotes = [i for i, c in enumerate(chunk) if c == '"']
    out = [chunk[a + 1 : b] for a, b in zip(quotes[0::2], quotes[1::2])]
    if len(quotes) % 2:
        # An unpaired quote: keep the text after it (missing closing quote) or,
        # failing that, the text before it (missing opening quote).
        last = quotes[-1]
        prev_end = quotes[-2] + 1 if len(quotes) > 1 else 0
        after = chunk[last + 1 :].strip(" ;,'")
        before = chunk[prev_end:last].strip(" ;,'")
        out.append(after or before)
    return out


def parse_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split a raw gloss into (definition, [example, ...])."""
    m = _EXAMPLE_START.search(gloss)
    if m is None:
        definition, tail = gloss, ""
    else:
        definition, tail = gloss[: m.start()], gloss[m.end() - 1 :]
    definition = normalise(definition).rstrip(";: ")
    if definition.count('"') % 2 and definition.endswith('"'):
        # A few glosses close a quote they never opened; drop the stray mark.
        definition = definition[:-1].rstrip(";: ")
    examples = []
    for chunk in _CHUNK_SPLIT.split(tail):
        examples.extend(normalise(e) for e in _examples_from_chunk(chunk))
    return definition, [e for e in examples if e]


def iter_synsets(path: Path):
    """Yield (pos, offset, gloss) for every synset line of a WordNet data file."""
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            head, sep, gloss = line.partition(" | ")
            if not sep:
                raise ValueError(f"{path.name}: no gloss in line {line[:40]!r}")
            offset, _lex_filenum, ss_type = head.split(" ", 3)[:3]
            if len(offset) != 8 or ss_type not in {"n", "v", "a", "s", "r"}:
                raise ValueError(f"{path.name}: malformed line {line[:40]!r}")
            yield ss_type, offset, gloss


def collect_texts(wordnet_dir: Path) -> list[dict]:
    """All definitions and examples, filtered and de-duplicated in stable order."""
    rows, seen = [], set()
    for name in DATA_FILES:
        for pos, offset, gloss in iter_synsets(wordnet_dir / name):
            definition, examples = parse_gloss(gloss)
            candidates = [("definition", definition)] + [("example", e) for e in examples]
            for kind, text in candidates:
                if len(text) < MIN_CHARS or text in seen:
                    continue
                seen.add(text)
                rows.append({"text": text, "kind": kind, "pos": pos, "synset_offset": offset})
    return rows


def sample_rows(rows: list[dict], seed: int, n_def: int, n_ex: int) -> list[dict]:
    rng = random.Random(seed)
    defs = [r for r in rows if r["kind"] == "definition"]
    exs = [r for r in rows if r["kind"] == "example"]
    picked = rng.sample(defs, min(n_def, len(defs))) + rng.sample(exs, min(n_ex, len(exs)))
    rng.shuffle(picked)
    return picked


def read_license(copyright_path: Path) -> tuple[str, str]:
    """Return (license name, plain-text notice) for the upstream 'Files: *' stanza."""
    stanzas = copyright_path.read_text(encoding="utf-8").split("\n\n")
    stanza = next(s for s in stanzas if s.startswith("Files: *"))
    lines = stanza.splitlines()
    copyright_line = next(l for l in lines if l.startswith("Copyright:"))
    start = next(i for i, l in enumerate(lines) if l.startswith("License:"))
    name = lines[start].split(":", 1)[1].strip()
    body = []
    for l in lines[start + 1 :]:
        if not l.startswith(" "):
            break
        # Debian copyright format: one leading space, and " ." for a blank line.
        body.append("" if l.strip() == "." else l[1:])
    notice = (
        f"{UPSTREAM} -- license notice, copied from the Debian {PACKAGE} package\n"
        f"({COPYRIGHT_FILE.as_posix()}, License: {name}).\n"
        f"{copyright_line}\n\n" + "\n".join(body).rstrip() + "\n"
    )
    return name, notice


def build(package_dir: Path, out: Path) -> dict:
    wordnet_dir = package_dir / WORDNET_DIR
    rows = collect_texts(wordnet_dir)
    picked = sample_rows(rows, SEED, N_DEFINITIONS, N_EXAMPLES)

    out.mkdir(parents=True, exist_ok=True)
    parquet_path = out / "corpus.parquet"
    write_parquet(picked, SCHEMA, parquet_path)

    license_name, notice = read_license(package_dir / COPYRIGHT_FILE)
    write_text(out / "LICENSE.wordnet", notice)

    def by_kind(rs):
        return {k: sum(r["kind"] == k for r in rs) for k in ("definition", "example")}

    manifest = {
        "name": "wordnet_glosses",
        "description": "WordNet 3.0 synset definitions and usage examples (English).",
        "source": {
            "upstream": UPSTREAM,
            "upstream_homepage": "https://wordnet.princeton.edu/",
            "debian_package": PACKAGE,
            "debian_version": package_version(package_dir, CHANGELOG_FILE),
            "files": {
                (WORDNET_DIR / n).as_posix(): sha256_file(wordnet_dir / n) for n in DATA_FILES
            },
        },
        "license": {
            "name": license_name,
            "spdx": "WordNet",
            "notice_file": "LICENSE.wordnet",
            "copied_from": COPYRIGHT_FILE.as_posix(),
        },
        "processing": {
            "definition": "gloss text before the first quoted example, whitespace-normalised, "
            "trailing ';'/':' stripped",
            "example": "each quoted sentence after the definition, whitespace-normalised",
            "min_chars": MIN_CHARS,
            "dedup": "exact text, first occurrence kept in order "
            + ", ".join(DATA_FILES)
            + " then synset offset (definition before its examples)",
        },
        "sampling": {
            "rng": "python random.Random(seed): sample definitions, sample examples, "
            "then shuffle together",
            "seed": SEED,
            "requested": {"definition": N_DEFINITIONS, "example": N_EXAMPLES},
            "available_after_dedup": by_kind(rows),
        },
        "output": {
            "file": "corpus.parquet",
            "sha256": sha256_file(parquet_path),
            "bytes": parquet_path.stat().st_size,
            "columns": SCHEMA.names,
            "compression": f"zstd level {ZSTD_LEVEL}",
            "rows": len(picked),
            "rows_by_kind": by_kind(picked),
        },
        "built_with": {
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
        },
        "rebuild_command": REBUILD_COMMAND,
        "rebuild_from_extracted_tree": REBUILD_COMMAND + " --package-dir <extracted wordnet-base>",
    }
    write_text(out / "MANIFEST.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--package-dir",
        type=Path,
        help="extracted wordnet-base tree (dpkg -x / dpkg-deb -R); fetched with apt-get if omitted",
    )
    ap.add_argument("--package-version", default=DEFAULT_PACKAGE_VERSION,
                    help="Debian version to fetch when --package-dir is omitted")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    build_from_package(lambda tree: build(tree, args.out), PACKAGE, args.package_version, args.package_dir, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
