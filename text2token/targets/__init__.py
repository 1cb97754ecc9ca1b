"""Target token distributions as `datasets.Dataset`s: building, checking, saving, loading."""

from .data_driven import build_data_driven_targets, content_text, english_stopwords
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
    "english_stopwords",
    "load_targets",
    "read_info",
    "save_targets",
    "tokenizer_fingerprint",
]
