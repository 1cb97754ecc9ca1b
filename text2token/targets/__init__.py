"""Target token distributions as `datasets.Dataset`s: building, checking, saving, loading."""

from .data_driven import build_data_driven_targets, content_text, nltk_english_stopwords, resolve_stopwords
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

__all__ = [
    "TARGET_IDS",
    "TARGET_WEIGHTS",
    "TEXT",
    "TargetInfo",
    "attach_info",
    "build_data_driven_targets",
    "check_tokenizer",
    "content_text",
    "nltk_english_stopwords",
    "load_targets",
    "read_info",
    "resolve_stopwords",
    "save_targets",
    "tokenizer_fingerprint",
]
