"""Settings records (nested mappings of option -> value) compared field by field: the one place that
decides whether stored settings match wanted ones and names each difference."""

from __future__ import annotations

from collections.abc import Mapping


def flatten_record(record: Mapping, prefix: str = "") -> dict:
    """A nested record as `section.key -> value` (how differences and the report name fields)."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update(flatten_record(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def record_differences(stored: Mapping, wanted: Mapping) -> list[str]:
    """`field: stored -> wanted` for each (flattened) field where the two records differ, sorted by name."""
    flat_stored, flat_wanted = flatten_record(stored), flatten_record(wanted)
    return [f"{name}: {flat_stored.get(name)!r} -> {flat_wanted.get(name)!r}"
            for name in sorted(set(flat_stored) | set(flat_wanted)) if flat_stored.get(name) != flat_wanted.get(name)]


def refuse_differences(stored: Mapping, wanted: Mapping, what: str, asker: str, remedy: str) -> None:
    """Raise when two records differ, naming each differing field: "<what> with other settings than
    this <asker> asks for: <fields>. <remedy>"."""
    differing = record_differences(stored, wanted)
    if differing:
        raise ValueError(f"{what} with other settings than this {asker} asks for: {'; '.join(differing)}. {remedy}")
