"""One comparison of settings records and one atomic write, shared by every caller."""

import os

import pytest

from text2token.files import write_atomic
from text2token.records import record_differences, refuse_differences


def test_record_differences_name_each_nested_field_in_order():
    stored = {"model": {"max_length": 64, "pooling": "mean"}, "targets_key": "a", "gone": 1}
    wanted = {"model": {"max_length": 128, "pooling": "mean"}, "targets_key": "b", "new": [1]}
    assert record_differences(stored, wanted) == ["gone: 1 -> None", "model.max_length: 64 -> 128", "new: None -> [1]",
                                                  "targets_key: 'a' -> 'b'"]
    assert record_differences(stored, stored) == []
    with pytest.raises(ValueError, match=r"^out is complete, but was trained with other settings than this recipe "
                                         r"asks for: targets_key: 'a' -> 'b'\. Retrain\.$"):
        refuse_differences({"targets_key": "a"}, {"targets_key": "b"}, "out is complete, but was trained", "recipe",
                           "Retrain.")


def test_write_atomic_keeps_the_old_content_when_the_rename_fails(tmp_path, monkeypatch):
    path = write_atomic(tmp_path / "sub" / "record.json", "old")
    assert path.read_text() == "old"
    write_atomic(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    assert path.read_bytes() == b"\x00bytes", "a failed write must leave the old content under the final name"
    assert sorted(os.listdir(path.parent)) == ["record.json"], "nor a partial file beside it"
