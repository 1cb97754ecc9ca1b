"""The GCIDE corpus builder on a tiny dictd package shaped like Debian's dict-gcide, and `corpus: gcide`."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

BELL = """Bell \\Bell\\, n. [AS. belle, fr. bellan to bellow. See {Bellow}.]
   1. A hollow metallic vessel, usually shaped somewhat like a
      cup with a flaring mouth, giving forth a ringing sound on being struck.
      [1913 Webster]

            The bells of the steeple were ringing for the evening service.
                                                  --Milton.
      [1913 Webster]

            A soft answer turneth away wrath, but grievous words stir up anger.
                                                  --Prov. xv. 1.
      [1913 Webster]

   2. (Arch.) That part of the capital of a column included between the
      abacus and neck molding. "In a cowslip's bell I lie." --Shak.
      [1913 Webster]

   Note: Bells have been made of various metals, but the best
         have always been, as now, of an alloy of copper and tin.
         [1913 Webster]

   {Bell tent}, a circular conical-topped tent, the sort used by soldiers in camp.
      [1913 Webster] Retreat

"""
RETREAT = """Retreat \\Re*treat"\\, v. i. [imp. & p. p. {Retreated}; p. pr. &
   vb. n. {Retreating}.]
   To make a retreat; to retire from any position or place; to
   withdraw; as, the defeated army retreated from the field.
   [1913 Webster]

"""
INFO = "00-database-info\n     This file was converted from the original database.\n\n"
# Shares an 8-word run with the evaluation text below, so the builder must drop it.
CONTAMINATED = """Quiet \\Qui"et\\, n.
   The quick brown fox jumps over the lazy dog near the riverbank, said the old manuscript.
   [1913 Webster]

"""
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(value: int) -> str:
    digits = ""
    while True:
        value, rest = divmod(value, 64)
        digits = _B64[rest] + digits
        if not value:
            return digits


def _package(root: Path) -> Path:
    """A dict-gcide tree: the dictd body (gzip), its index (two headwords share the Bell entry), the copyright."""
    body, index, offset = "", [], 0
    for headwords, entry in ((["00-database-info"], INFO), (["Bell", "Bell tent"], BELL),
                             (["Retreat"], RETREAT), (["Quiet"], CONTAMINATED)):
        for headword in headwords:
            index.append(f"{headword}\t{_b64(offset)}\t{_b64(len(entry.encode()))}")
        body += entry
        offset += len(entry.encode())
    dictd = root / "usr/share/dictd"
    dictd.mkdir(parents=True)
    (dictd / "gcide.dict.dz").write_bytes(gzip.compress(body.encode(), mtime=0))
    (dictd / "gcide.index").write_text("\n".join(sorted(index)) + "\n")
    doc = root / "usr/share/doc/dict-gcide"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("GCIDE is free software; GNU General Public License, version 2 or later.\n")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text("Package: dict-gcide\nVersion: 0.48.5+nmu2\n")
    return root


def _eval_suite(root: Path) -> Path:
    (root / "task").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["Then the quick brown fox jumps over the lazy dog near the riverbank."],
                             "label": [1]}), root / "task" / "test.parquet")
    return root


@pytest.fixture
def builder(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import build_gcide_corpus

    return build_gcide_corpus


def test_the_builder_keeps_dictionary_prose_and_drops_markup_bible_and_eval_overlap(tmp_path, builder, monkeypatch):
    monkeypatch.setattr(builder, "MIN_CHARS", 20)
    monkeypatch.setattr(builder, "ENTRY_MIN_CHARS", 100)
    package, suite = _package(tmp_path / "pkg"), _eval_suite(tmp_path / "suite")
    manifest = builder.build(package, tmp_path / "out", suite)

    rows = pq.read_table(tmp_path / "out" / "corpus.parquet").to_pylist()
    texts = {(r["kind"], r["text"]) for r in rows}
    assert ("definition", "A hollow metallic vessel, usually shaped somewhat like a cup with a flaring mouth, "
                          "giving forth a ringing sound on being struck.") in texts
    assert ("definition", "That part of the capital of a column included between the abacus and neck molding. "
                          "\"In a cowslip's bell I lie.\"") in texts
    # The header (pronunciation, part of speech, two bracketed groups across lines) is gone.
    assert ("definition", "To make a retreat; to retire from any position or place; to withdraw; as, the "
                          "defeated army retreated from the field.") in texts
    assert ("quotation", "The bells of the steeple were ringing for the evening service.") in texts
    assert ("note", "Bells have been made of various metals, but the best have always been, as now, of an "
                    "alloy of copper and tin.") in texts
    assert ("phrase", "Bell tent, a circular conical-topped tent, the sort used by soldiers in camp.") in texts
    assert any(kind == "entry" and text.startswith("A hollow metallic vessel") and "That part of the capital" in text
               for kind, text in texts)
    everything = " ".join(text for _, text in texts)
    assert "turneth away wrath" not in everything  # a Bible quotation
    assert "quick brown fox" not in everything  # shares 8 words with the evaluation suite
    assert not any(mark in everything for mark in ("[", "{", "--", "Webster", "00-database"))
    assert {r["headword"] for r in rows} == {"Bell", "Retreat"}  # one row per entry text, not per index line

    processing = manifest["processing"]
    assert processing["bible_quotations_dropped"] == 1
    assert processing["eval_overlap_dropped"] == {"definition": 1}
    assert processing["eval_suite_files"] == ["task/test.parquet"]
    assert manifest["output"]["rows"] == len(rows)
    assert json.loads((tmp_path / "out" / "MANIFEST.json").read_text()) == manifest
    assert "General Public License" in (tmp_path / "out" / "LICENSE.gcide").read_text()

    again = builder.build(package, tmp_path / "again", suite)
    assert again["output"]["sha256"] == manifest["output"]["sha256"]  # byte-for-byte reproducible


def test_the_builder_refuses_an_empty_evaluation_suite(tmp_path, builder):
    with pytest.raises(FileNotFoundError, match="no evaluation-suite parquet files"):
        builder.build(_package(tmp_path / "pkg"), tmp_path / "out", tmp_path)


def test_a_bad_index_line_is_named(tmp_path, builder):
    package = _package(tmp_path / "pkg")
    index = package / "usr/share/dictd/gcide.index"
    index.write_text(index.read_text() + "no tabs here\n")
    with pytest.raises(ValueError, match=r"gcide.index:6: expected 'headword<TAB>offset<TAB>length'"):
        list(builder.iter_entries(package))


def test_corpus_gcide_names_the_builder_until_it_has_run_then_loads_it(tmp_path, builder, monkeypatch):
    from text2token.corpora import load_corpus

    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"corpus gcide is built on this machine, not shipped: run "
                                                r"`python scripts/build_gcide_corpus.py`"):
        load_corpus("gcide")
    monkeypatch.setattr(builder, "MIN_CHARS", 20)
    builder.build(_package(tmp_path / "pkg"), builder.default_out(), _eval_suite(tmp_path / "suite"))
    corpus = load_corpus("gcide", max_rows=2)
    assert len(corpus) == 2 and set(corpus.column_names) == {"text", "kind", "headword"}
