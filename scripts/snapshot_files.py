"""File helpers shared by the corpus snapshot builders: digests, atomic writes, Debian fetches.

Standard library and pyarrow only, so a builder runs without the project installed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ZSTD_LEVEL = 19
ROW_GROUP_SIZE = 1 << 20  # one row group; keeps the layout independent of defaults


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def write_parquet(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
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


def package_version(package_dir: Path, changelog: Path) -> str:
    """Binary version from DEBIAN/control if present, else from the package's Debian changelog."""
    control = package_dir / "DEBIAN" / "control"
    if control.exists():
        for line in control.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    with gzip.open(package_dir / changelog, "rt", encoding="utf-8") as f:
        m = re.match(r"\S+ \(([^)]+)\)", f.readline())
    if not m:
        raise ValueError(f"{package_dir}: cannot determine the package version")
    return m.group(1)


def fetch_deb(package: str, version: str, workdir: Path) -> Path:
    """apt-get download + dpkg-deb -R (files plus DEBIAN/control) into workdir; the tree's path."""
    subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=workdir, check=True)
    (deb,) = workdir.glob(f"{package}_*.deb")
    print(f"fetched {deb.name} sha256={sha256_file(deb)}", file=sys.stderr)
    tree = workdir / "pkg"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    return tree


def build_from_package(build, package: str, version: str, package_dir: Path | None, out: Path) -> dict:
    """`build(tree)` on an extracted package tree, or on the pinned .deb fetched into a temp folder;
    prints what was written and returns the manifest."""
    if package_dir is not None:
        manifest = build(package_dir)
    else:
        with tempfile.TemporaryDirectory(prefix=f"{package}-") as tmp:
            manifest = build(fetch_deb(package, version, Path(tmp)))
    summary = manifest["output"]
    print(f"wrote {out / summary['file']}: {summary['rows']} rows {summary['rows_by_kind']}, "
          f"{summary['bytes']} bytes, sha256 {summary['sha256']}")
    return manifest
