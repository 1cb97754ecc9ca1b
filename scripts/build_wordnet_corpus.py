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
import gzip
import hashlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
ZSTD_LEVEL = 19
ROW_GROUP_SIZE = 1 << 20  # one row group; keeps the layout independent of defaults

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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def package_version(package_dir: Path) -> str:
    """Binary version from DEBIAN/control if present, else from the Debian changelog."""
    control = package_dir / "DEBIAN" / "control"
    if control.exists():
        for line in control.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    with gzip.open(package_dir / CHANGELOG_FILE, "rt", encoding="utf-8") as f:
        m = re.match(r"\S+ \(([^)]+)\)", f.readline())
    if not m:
        raise ValueError("cannot determine package version")
    return m.group(1)


def fetch_package(workdir: Path, version: str) -> Path:
    """apt-get download + dpkg-deb -R (files plus DEBIAN/control) into workdir."""
    subprocess.run(["apt-get", "download", f"{PACKAGE}={version}"], cwd=workdir, check=True)
    (deb,) = workdir.glob(f"{PACKAGE}_*.deb")
    print(f"fetched {deb.name} sha256={sha256_file(deb)}", file=sys.stderr)
    tree = workdir / "pkg"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    return tree


def write_atomic(path: Path, write) -> None:
    """Write via a temp file in the same folder, then os.replace onto path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_parquet(rows: list[dict], path: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    write_atomic(
        path,
        lambda tmp: pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            row_group_size=ROW_GROUP_SIZE,
            write_statistics=False,
        ),
    )


def write_text(path: Path, text: str) -> None:
    def _write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    write_atomic(path, _write)


def build(package_dir: Path, out: Path) -> dict:
    wordnet_dir = package_dir / WORDNET_DIR
    rows = collect_texts(wordnet_dir)
    picked = sample_rows(rows, SEED, N_DEFINITIONS, N_EXAMPLES)

    out.mkdir(parents=True, exist_ok=True)
    parquet_path = out / "corpus.parquet"
    write_parquet(picked, parquet_path)

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
            "debian_version": package_version(package_dir),
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

    if args.package_dir is not None:
        manifest = build(args.package_dir, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="wordnet-base-") as tmp:
            manifest = build(fetch_package(Path(tmp), args.package_version), args.out)

    out = manifest["output"]
    print(f"wrote {args.out / out['file']}: {out['rows']} rows {out['rows_by_kind']}, "
          f"{out['bytes']} bytes, sha256 {out['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
