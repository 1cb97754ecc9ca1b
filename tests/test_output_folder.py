"""The library never destroys what the user already has: its inputs, a folder of the user's files, a
user's hidden sibling of a target dataset; its folders follow the umask."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from model_fixtures import SENTENCES, load_recipe_script
from text2token.targets import build_data_driven_targets, load_targets, save_targets

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict:
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _train_args(tmp_path, backbone, output_dir, *extra):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 2))
    return ["--config", str(ROOT / "recipes/smollm2-135m/stage1.yaml"), "--backbone", str(backbone),
            "--corpus", str(corpus), "--output_dir", str(output_dir), "--per_device_train_batch_size", "4",
            "--max_steps", "1", "--save_steps", "1", "--warmup_steps", "0", "--alignment_every", "0", *extra]


def test_train_into_its_own_backbone_is_refused_and_the_backbone_is_untouched(tmp_path, tiny_backbone_dir):
    before = _snapshot(tiny_backbone_dir)
    with pytest.raises(ValueError, match=r"output_dir=.*backbone is this run's input backbone=.*writing there would "
                                         r"overwrite it"):
        load_recipe_script("train").main(_train_args(tmp_path, tiny_backbone_dir, tiny_backbone_dir))
    assert _snapshot(tiny_backbone_dir) == before


def test_train_into_a_folder_inside_its_backbone_is_refused(tmp_path, tiny_backbone_dir):
    with pytest.raises(ValueError, match="overlaps this run's input backbone"):
        load_recipe_script("train").main(_train_args(tmp_path, tiny_backbone_dir, tiny_backbone_dir / "run"))


def test_train_into_a_folder_of_user_files_is_refused_naming_them(tmp_path, tiny_backbone_dir):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("README.md", "config.json", "modules.json"):
        (mine / name).write_text(f"the user's own {name}")
    before = _snapshot(mine)
    with pytest.raises(ValueError, match=r"holds files this run did not write \(README.md, config.json, "
                                         r"modules.json\).*--overwrite"):
        load_recipe_script("train").main(_train_args(tmp_path, tiny_backbone_dir, mine))
    assert _snapshot(mine) == before


def test_the_contract_allows_new_empty_own_and_overwritten_folders(tmp_path):
    from text2token.output_folder import OutputFolderError, check_output_folder

    check_output_folder(tmp_path / "new", option="output_dir")
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", option="output_dir")
    own = tmp_path / "own"
    own.mkdir()
    (own / "text2token_run.json").write_text("{}")
    (own / "checkpoint-2").mkdir()
    check_output_folder(own, option="output_dir", records=("text2token_run.json",))
    (tmp_path / "user" / "x").mkdir(parents=True)
    with pytest.raises(OutputFolderError, match=r"holds files this run did not write \(x\)"):
        check_output_folder(tmp_path / "user", option="output_dir")
    check_output_folder(tmp_path / "user", option="output_dir", overwrite=True)
    # --overwrite never lifts the input rule, and resolved paths are compared.
    inputs = {"corpus": own / "checkpoint-2"}
    with pytest.raises(OutputFolderError, match="overlaps this run's input corpus"):
        check_output_folder(tmp_path / "user" / ".." / "own", option="output_dir", inputs=inputs, overwrite=True)
    with pytest.raises(OutputFolderError, match="is a file"):
        check_output_folder(own / "text2token_run.json", option="output_dir")


def test_the_refused_resume_advises_nothing_that_destroys_an_input(tmp_path):
    from text2token.run_record import check_resume

    (tmp_path / "text2token_run.json").write_text(json.dumps({"model": {"lora_r": 16}}))
    with pytest.raises(ValueError, match="other settings") as refused:
        check_resume(tmp_path, {"model": {"lora_r": 8}}, checkpoint=str(tmp_path / "checkpoint-2"), write=False)
    assert "delete" not in str(refused.value)


def _targets(tokenizer, texts=SENTENCES):
    return build_data_driven_targets(datasets.Dataset.from_dict({"text": list(texts)}), tokenizer)


def test_saving_targets_leaves_the_users_hidden_siblings_alone(real_tokenizer, tmp_path):
    backup = tmp_path / ".X.backup-2026"
    backup.mkdir()
    (backup / "precious.txt").write_text("keep me")
    (tmp_path / ".X.notes").write_text("keep me too")
    save_targets(_targets(real_tokenizer), tmp_path / "X")
    save_targets(_targets(real_tokenizer, SENTENCES[:3]), tmp_path / "X")
    assert (backup / "precious.txt").read_text() == "keep me" and (tmp_path / ".X.notes").is_file()
    assert load_targets(tmp_path / "X")["text"] == SENTENCES[:3]


def test_a_killed_saves_staging_folder_is_removed_and_only_it(real_tokenizer, tmp_path):
    killed = subprocess.run([sys.executable, "-c", "import sys; from text2token.staging import make_staging; "
                             "print(make_staging(sys.argv[1]))", str(tmp_path / "X")],
                            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    left_behind = Path(killed.stdout.strip())
    assert left_behind.is_dir()
    unmarked = tmp_path / ".X.staging-users-own"  # named like a staging folder, without the library's marker
    unmarked.mkdir()
    save_targets(_targets(real_tokenizer), tmp_path / "X")
    assert not left_behind.exists() and unmarked.is_dir()
    assert not any(p.name.startswith(".X.staging-") for p in tmp_path.iterdir() if p != unmarked)


def test_target_folders_follow_the_umask(real_tokenizer, tmp_path):
    old = os.umask(0o022)
    try:
        path = save_targets(_targets(real_tokenizer), tmp_path / "targets")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def _targets_build(*args):
    from text2token.cli import main

    main(["targets", "build", *map(str, args)])


def test_targets_build_refuses_its_backbone_and_a_user_folder(tmp_path, tiny_backbone_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    before = _snapshot(tiny_backbone_dir)
    with pytest.raises(ValueError, match=r"--output=.*is this run's input backbone"):
        _targets_build("--backbone", tiny_backbone_dir, "--corpus", corpus, "--output", tiny_backbone_dir)
    with pytest.raises(ValueError, match=r"--output=.*overlaps this run's input"):
        _targets_build("--backbone", tiny_backbone_dir, "--corpus", corpus, "--output", tmp_path)
    assert _snapshot(tiny_backbone_dir) == before


def test_targets_build_takes_the_folders_lock(tmp_path, tiny_backbone_dir):
    from text2token.output_folder import sibling_lock
    from text2token.output_lock import OutputFolderLockedError

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sibling_lock(tmp_path / "T").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(OutputFolderLockedError, match=f"pid {holder.pid}"):
            _targets_build("--backbone", tiny_backbone_dir, "--corpus", corpus, "--output", tmp_path / "T")
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "T").exists()


def test_export_refuses_to_write_inside_its_model(tmp_path):
    from text2token.export import export_sentence_transformers

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"output=.*overlaps this run's input model"):
        export_sentence_transformers(model, model / "st")


def test_an_export_follows_the_umask_and_leaves_no_staging_or_lock(tiny_model, tmp_path):
    from text2token.export import export_sentence_transformers

    tiny_model.save_pretrained(tmp_path / "t2t")
    old = os.umask(0o022)
    try:
        out = export_sentence_transformers(tmp_path / "t2t", tmp_path / "export")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "t2t"], "staging folder or lock left behind"
