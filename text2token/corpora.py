"""Training corpora: the packaged WordNet snapshot, or any text file, local dataset or Hub dataset."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import datasets

from .cache import cache_root
from .files import read_or_name_the_file

logger = logging.getLogger(__name__)

DEFAULT_CORPUS = "wordnet-glosses"
_PACKAGED = {DEFAULT_CORPUS: "corpora/wordnet_glosses/corpus.parquet"}
# Corpora whose license keeps them out of the wheel: a builder in the repository writes them into the
# cache, where the name finds them (GCIDE is GPL-2.0-or-later).
_BUILT = {"gcide": ("corpora/gcide/corpus.parquet", "python scripts/build_gcide_corpus.py")}
_FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


def packaged_corpus_path(name: str) -> Path:
    return Path(str(resources.files("text2token.resources").joinpath(_PACKAGED[name])))


def built_corpus_path(name: str) -> Path:
    """Where `name`'s builder writes it (under `$TEXT2TOKEN_CACHE`); a clear error until it has run."""
    relative, command = _BUILT[name]
    path = cache_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus {name} is built on this machine, not shipped: run `{command}` from a "
                                f"clone of the text2token repository to write {path}")
    return path


def load_corpus(
    source: str = DEFAULT_CORPUS,
    *,
    text_column: str = "text",
    split: str = "train",
    max_rows: int | None = None,
    data_files: str | list[str] | None = None,
) -> datasets.Dataset:
    """Load a text corpus as a `datasets.Dataset`.

    `source` is one of: a packaged corpus name (`wordnet-glosses`); a corpus built into the cache by a
    repository script (`gcide`: `python scripts/build_gcide_corpus.py`); a `.txt` file (one text per
    non-blank line); a `.parquet`/`.csv`/`.json`/`.jsonl` file; a folder written by `save_to_disk`;
    or a Hub dataset id (`load_dataset(source, split=split)`). `data_files` picks files of a Hub
    dataset (the paper's stage-2 corpus is one file, `wiki1m_for_simcse.txt`, of
    `princeton-nlp/datasets-for-simcse`).
    """
    path = Path(source)
    named = source in _PACKAGED or source in _BUILT
    if data_files and (named or path.exists()):
        raise ValueError(f"corpus_data_files={data_files!r} picks files of a Hub dataset, but corpus {source} is "
                         f"{'a named corpus' if named else 'a local path'}: drop corpus_data_files")
    if named:
        dataset = datasets.Dataset.from_parquet(
            str(packaged_corpus_path(source) if source in _PACKAGED else built_corpus_path(source)))
    elif path.suffix == ".txt":
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {source} does not exist")
        dataset = datasets.Dataset.from_dict({text_column: _read_text_lines(path)})
    elif path.suffix in _FILE_BUILDERS:
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {source} does not exist")
        dataset = read_or_name_the_file(
            lambda: datasets.load_dataset(_FILE_BUILDERS[path.suffix], data_files=str(path), split="train"), path)
    elif path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "state.json").is_file()):
        dataset = read_or_name_the_file(lambda: datasets.load_from_disk(str(path)), path)
    elif path.exists():
        raise ValueError(f"corpus {source}: not a .txt/.parquet/.csv/.json/.jsonl file nor a saved dataset folder")
    elif _local_path_reason(source):
        raise FileNotFoundError(f"corpus {source} does not exist: it looks like a local path "
                                f"({_local_path_reason(source)}), so the Hub was not asked. A Hub dataset id looks "
                                f"like 'owner/name'; a local corpus is a .txt/.parquet/.csv/.json/.jsonl file or a "
                                f"saved dataset folder")
    else:
        dataset = _load_from_hub(source, split=split, data_files=data_files)
    if text_column not in dataset.column_names:
        raise ValueError(f"corpus {source}: no text column {text_column!r}; its columns are {dataset.column_names}")
    if max_rows is not None and max_rows < len(dataset):
        dataset = dataset.select(range(max_rows))
    logger.info("Loaded corpus %s: %d rows", source, len(dataset))
    return dataset


def _load_from_hub(source: str, *, split: str, data_files) -> datasets.Dataset:
    """A Hub dataset; one that is not there is named as missing both here and on the Hub."""
    from datasets.exceptions import DatasetNotFoundError

    try:
        if data_files:  # a Hub repo of plain files: the builder follows their extension (.txt: a `text` column)
            return datasets.load_dataset(source, data_files=data_files, split=split)
        return datasets.load_dataset(source, split=split)
    except (DatasetNotFoundError, FileNotFoundError) as exc:
        raise FileNotFoundError(f"corpus {source}: no such local file or folder (in {Path.cwd()}), and no Hub dataset "
                                f"of that id ({type(exc).__name__}: {str(exc)[:200]})") from exc


# Suffixes of local files (compressed or not) that a Hub dataset id never ends with.
_LOCAL_SUFFIXES = (".txt", ".gz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".tsv", ".arrow", *_FILE_BUILDERS)


def _local_path_reason(source: str) -> str | None:
    """Why `source` (which does not exist) is a mistyped local path rather than a Hub dataset id, or None."""
    if source.startswith(("./", "../", "/", "~", ".\\")):
        return "it starts like a path"
    if source.lower().endswith(_LOCAL_SUFFIXES):
        return f"it ends with a file suffix, {Path(source).suffix}"
    if source.count("/") > 1:
        return "a Hub id has one '/'"
    parent = Path(source).parent
    if str(parent) not in ("", ".") and parent.is_dir():
        return f"the folder {parent}/ exists here"
    return None


def _read_text_lines(path: Path) -> list[str]:
    """Non-blank lines of a UTF-8 text file; a line that is not UTF-8 is named with its number."""
    texts = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
            if line:
                texts.append(line)
    return texts

