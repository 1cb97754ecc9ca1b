"""TargetSpec: one description of a target build whose key decides reuse; stale targets are never reused."""

import logging
import os

import datasets
import pyarrow as pa
import pytest
import torch

from text2token import Text2TokenModel
from text2token.arguments import DataArguments
from text2token.commands.train import plan_targets
from text2token.targets import load_targets, obtain, read_info
from text2token.targets.spec import TargetSpec, resolve_params, text_fingerprint

from model_fixtures import SENTENCES

TEXTS = SENTENCES + ["Rivers carry sediment toward the sea.", "Glaciers carve valleys slowly."]


def _corpus_file(tmp_path, texts=TEXTS):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(texts))
    return path


def prepare_targets(model, args, output_dir):
    """What `text2token train` does for its targets: the user's own, or reused / built in <output_dir>/targets."""
    spec, corpus, supplied = plan_targets(model, args)
    if supplied is not None:
        return supplied
    return obtain(spec, corpus, model, os.path.join(output_dir, "targets"), shard_size=args.target_shard_size)


def _build(model, tmp_path, caplog, **overrides):
    """prepare_targets into tmp_path/out; returns the targets and whether they were rebuilt."""
    args = DataArguments(corpus=str(tmp_path / "corpus.txt"), **overrides)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="text2token.targets.lifecycle"):
        targets = prepare_targets(model, args, str(tmp_path / "out"))
    return targets, "Reusing the targets" not in caplog.text


def test_paper_defaults_are_resolved_in_one_place():
    mean = resolve_params("model", pooling="mean", max_length=128)
    last = resolve_params("model", pooling="last", max_length=128)
    assert (mean["temperature"], last["temperature"], mean["top_k"]) == (1e-4, 1e-5, 32)
    data = resolve_params("data", pooling="mean", max_length=64)
    assert data == {"weighting": "uniform", "top_k": None, "stopwords": "nltk", "max_length": 64,
                    "text_column": "text"}
    with pytest.raises(ValueError, match="target method 'dense'"):
        resolve_params("dense", pooling="mean", max_length=64)


def test_differences_name_each_field():
    base = TargetSpec(method="data", params={"top_k": None, "weighting": "uniform"}, corpus="c.txt@sha256:1",
                      corpus_fingerprint="aa", split="train", max_rows=None, tokenizer_fingerprint="t")
    other = TargetSpec(method="data", params={"top_k": 8, "weighting": "uniform"}, corpus="moved.txt@sha256:1",
                       corpus_fingerprint="bb", split="train", max_rows=100, tokenizer_fingerprint="t")
    stored = {**base.to_dict(), "key": base.key()}
    assert base.differences(stored) == [] and base.key() == TargetSpec(**base.to_dict()).key()
    assert other.differences(stored) == ["corpus_fingerprint: 'aa' -> 'bb'", "max_rows: None -> 100",
                                         "params.top_k: None -> 8"]
    assert other.differences(None) == ["spec: none recorded (targets built before TargetSpec, or elsewhere)"]


def test_text_fingerprint_follows_content_not_chunking():
    texts = ["alpha", "", "gamma δ", None, "epsilon"]
    one = datasets.Dataset(pa.table({"text": pa.chunked_array([texts])}))
    two = datasets.Dataset(pa.table({"text": pa.chunked_array([texts[:2], texts[2:]])}))
    assert text_fingerprint(one, "text") == text_fingerprint(two, "text")
    assert text_fingerprint(one.select(range(4)), "text") != text_fingerprint(one, "text")
    changed = datasets.Dataset.from_dict({"text": ["alpha", "", "gamma d", None, "epsilon"]})
    assert text_fingerprint(changed, "text") != text_fingerprint(one, "text")
    moved = datasets.Dataset.from_dict({"text": ["alph", "a", "gamma δ", None, "epsilon"]})  # same bytes, new split
    assert text_fingerprint(moved, "text") != text_fingerprint(one, "text")


@pytest.mark.parametrize("change, field", [
    (lambda tmp: {"max_train_samples": 4}, "max_rows: None -> 4"),
    (lambda tmp: {"stopwords": "sklearn"}, "params.stopwords: 'nltk' -> 'sklearn'"),
    (lambda tmp: {"target_top_k": 3}, "params.top_k: None -> 3"),
    (lambda tmp: _corpus_file(tmp, TEXTS[:-1] + ["Glaciers carve valleys quickly."]) and {}, "corpus_fingerprint"),
])
def test_stale_data_driven_targets_are_rebuilt_naming_what_changed(tiny_model, tmp_path, caplog, change, field):
    _corpus_file(tmp_path)
    first, rebuilt = _build(tiny_model, tmp_path, caplog)
    assert rebuilt and read_info(first).spec["key"]
    _, rebuilt = _build(tiny_model, tmp_path, caplog)
    assert not rebuilt, "the same spec must reuse the stored targets"
    overrides = change(tmp_path)
    second, rebuilt = _build(tiny_model, tmp_path, caplog, **overrides)
    assert rebuilt, f"a changed {field} must not reuse stale targets"
    assert "built from another spec" in caplog.text and field in caplog.text
    assert read_info(second).spec["key"] != read_info(first).spec["key"]


def test_model_derived_targets_follow_the_deriving_weights(tiny_model, tmp_path, caplog):
    _corpus_file(tmp_path)
    stage1 = tmp_path / "stage1"
    tiny_model.save_pretrained(stage1, merge_lora=True)

    def derive():
        model = Text2TokenModel.from_pretrained(stage1)
        return _build(model, tmp_path, caplog, target_method="model", target_top_k=4)

    first, rebuilt = derive()
    assert rebuilt and read_info(first).params["temperature"] == 1e-4 and len(first[0]["target_ids"]) == 4
    assert not derive()[1]
    with torch.no_grad():  # stage 1 retrained: other weights in the same folder
        for param in tiny_model.parameters():
            param.add_(0.05)
    tiny_model.save_pretrained(stage1, merge_lora=True)
    second, rebuilt = derive()
    assert rebuilt and "model_digest" in caplog.text
    assert first["target_ids"] != second["target_ids"]
    assert len(os.listdir(tmp_path / "out" / "targets-work")) == 1, "shards of the old spec are dropped"


def test_supplied_targets_that_differ_from_the_run_are_refused_naming_fields(tiny_model, tmp_path, caplog):
    _corpus_file(tmp_path)
    _build(tiny_model, tmp_path, caplog)
    folder = str(tmp_path / "out" / "targets")
    supplied = prepare_targets(tiny_model, DataArguments(targets=folder), str(tmp_path / "other"))
    assert len(supplied) == len(load_targets(folder))
    with pytest.raises(ValueError, match=r"differ from what this run asks for \(targets -> this run\): "
                                         r"method: 'data' -> 'model'; params.top_k: None -> 5\. Rebuild them"):
        prepare_targets(tiny_model, DataArguments(targets=folder, target_method="model", target_top_k=5),
                        str(tmp_path / "other"))


def test_cli_reuses_only_targets_of_the_same_spec(tiny_backbone_dir, tmp_path, capsys, caplog):
    from text2token.cli import main as cli

    _corpus_file(tmp_path)
    argv = ["targets", "build", "--backbone", str(tiny_backbone_dir), "--corpus", str(tmp_path / "corpus.txt"),
            "--output", str(tmp_path / "t")]
    caplog.set_level(logging.INFO, logger="text2token.targets.lifecycle")
    cli(argv)
    assert f"{len(TEXTS)} rows of data targets" in capsys.readouterr().out and "Saved" in caplog.text
    caplog.clear()
    cli(argv)
    assert "Reusing the targets" in caplog.text and "Saved" not in caplog.text
    cli(argv + ["--max_train_samples", "3"])
    assert "3 rows of data targets" in capsys.readouterr().out and "max_rows: None -> 3" in caplog.text
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("the user's")  # an empty folder is the contract's to use
    with pytest.raises(ValueError, match=r"notes holds files this run did not write \(todo.txt\)"):
        cli(argv[:-1] + [str(tmp_path / "notes")])
    assert (tmp_path / "notes" / "todo.txt").read_text() == "the user's"
    with pytest.raises(ValueError, match="names prebuilt targets, but `targets build` builds them"):
        cli(argv + ["--targets", str(tmp_path / "t")])


def test_a_spec_names_what_is_built_not_which_encoder_object_built_it(tiny_model):
    # `targets build` resolves data-driven specs from a tokenizer, training from the model: the same
    # targets must get the same key, so either reuses the other's build.
    corpus = datasets.Dataset.from_dict({"text": TEXTS})
    from_model = TargetSpec.resolve("data", corpus, tiny_model, source="toy")
    from_tokenizer = TargetSpec.resolve("data", corpus, tiny_model.tokenizer, source="toy",
                                        max_length=tiny_model.config.max_length)
    assert from_model.key() == from_tokenizer.key() and from_model.params["weighting"] == "uniform"
    with pytest.raises(ValueError, match="data-driven targets from a tokenizer need max_length"):
        TargetSpec.resolve("data", corpus, tiny_model.tokenizer, source="toy")
    with pytest.raises(ValueError, match="model-derived targets need a Text2Token model"):
        TargetSpec.resolve("model", corpus, tiny_model.tokenizer, source="toy")
