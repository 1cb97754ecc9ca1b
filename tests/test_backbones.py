"""Saved models and targets name their backbone and corpus portably, never by this machine's paths."""

import json
import os
import shutil
from pathlib import Path

from text2token import Text2TokenModel
from text2token.backbones import EMBEDDED_DEFAULT, portable_backbone_name

from model_fixtures import SENTENCES, load_recipe_script

ROOT = Path(__file__).resolve().parents[1]


def _machine_paths(tmp_path):
    return [str(tmp_path), os.path.expanduser("~"), os.environ.get("TEXT2TOKEN_CACHE", "/nonexistent-cache")]


def test_a_trained_model_and_its_targets_hold_no_machine_path(tmp_path, tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TEXT2TOKEN_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4))
    out = tmp_path / "run"
    load_recipe_script("train").main([
        "--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), "--backbone", str(tiny_backbone_dir),
        "--corpus", str(corpus), "--output_dir", str(out), "--per_device_train_batch_size", "4", "--max_steps", "1",
        "--save_steps", "1", "--alignment_every", "0"])
    saved = {name: (out / name).read_text() for name in ("config.json", "README.md")}
    saved["text2token_targets.json"] = (out / "targets" / "text2token_targets.json").read_text()
    for name, text in saved.items():
        for path in _machine_paths(tmp_path):
            assert path not in text, f"{name} holds the machine path {path}"
    info = json.loads(saved["text2token_targets.json"])
    assert info["corpus"].startswith("corpus.txt@sha256:") and info["backbone"].startswith("backbone@weights:")
    lm_name = json.loads(saved["config.json"])["lm_config"]["_name_or_path"]
    assert lm_name == info["backbone"], "config.json and the targets name the backbone alike"


def test_the_converted_embedded_default_is_named_by_its_alias(tmp_path, tiny_backbone_dir):
    # A converted folder carries the conversion marker; stand one up from the tiny backbone.
    converted = tmp_path / "cache" / "backbones" / "SmolLM2-135M-Instruct-0123456789ab"
    shutil.copytree(tiny_backbone_dir, converted)
    (converted / "text2token-conversion.json").write_text("{}")
    assert portable_backbone_name(str(converted)) == EMBEDDED_DEFAULT == portable_backbone_name("embedded")
    model = Text2TokenModel.from_backbone(str(converted))
    model.save_pretrained(tmp_path / "saved")
    config = (tmp_path / "saved" / "config.json").read_text()
    assert str(tmp_path) not in config and json.loads(config)["lm_config"]["_name_or_path"] == EMBEDDED_DEFAULT
