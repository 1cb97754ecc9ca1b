"""Target token distributions as `datasets.Dataset`s, their whole lifecycle behind a small interface:
`TargetSpec.resolve(...)` says what a build is (every default filled in from `TARGET_DEFAULTS`),
`obtain(spec, corpus, encoder, cache)` reuses or builds it, `load(source)` reads a saved folder, a
`.parquet` file or a Hub dataset. The builders and the Arrow schema are here too."""

from .data_driven import build_data_driven_targets, content_text, nltk_english_stopwords, resolve_stopwords
from .defaults import TARGET_DEFAULTS, TargetDefaults
from .lifecycle import check_supplied, obtain
from .schema import (
    TARGET_IDS,
    TARGET_WEIGHTS,
    TEXT,
    TargetInfo,
    attach_info,
    check_tokenizer,
    load_targets,
    read_info,
    save_targets,
    tokenizer_fingerprint,
)
from .sources import load
from .spec import TargetSpec

__all__ = [
    "TARGET_DEFAULTS",
    "TARGET_IDS",
    "TARGET_WEIGHTS",
    "TEXT",
    "TargetDefaults",
    "TargetInfo",
    "TargetSpec",
    "attach_info",
    "build_data_driven_targets",
    "check_supplied",
    "check_tokenizer",
    "content_text",
    "load",
    "load_targets",
    "nltk_english_stopwords",
    "obtain",
    "read_info",
    "resolve_stopwords",
    "save_targets",
    "tokenizer_fingerprint",
]
