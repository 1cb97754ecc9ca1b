"""One command line: `text2token <subcommand>`, each with --help, recipes/*.py the same commands."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_fixtures import SENTENCES
from text2token.cli import JOBS, main as cli

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["train", "pipeline", "evaluate", "compare", "targets", "explain", "export"]


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "text2token.cli", "--help"], capture_output=True, text=True, check=True)
    listed = out.stdout.split("positional arguments:")[1]
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in listed, f"{name} missing from text2token --help"


@pytest.mark.parametrize("argv, expected", [
    (["train", "--help"], "--lora_target_modules"),
    (["pipeline", "--help"], "--stage2_args"),
    (["evaluate", "--help"], "--mteb_name"),
    (["compare", "--help"], "--learned"),
    (["targets", "build", "--help"], "--text_column"),
    (["explain", "--help"], "--compare"),
    (["export", "--help"], "--normalize"),
])
def test_each_subcommand_has_help(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


def test_flags_have_one_spelling(capsys):
    # Underscores everywhere (as HfArgumentParser spells the training options); no hyphenated twins.
    for argv in (["targets", "build", "--help"], ["explain", "--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit):
            cli(argv)
        text = capsys.readouterr().out
        words = [part for word in text.split() for part in word.split("/")]
        long_flags = [word.strip("[],.`") for word in words if word.startswith(("--", "[--"))]
        assert not [flag for flag in long_flags if "-" in flag.strip("[").lstrip("-")], argv


def test_recipe_scripts_are_the_commands():
    for name in JOBS:
        script = (ROOT / "recipes" / f"{name}.py").read_text()
        assert f"from text2token.commands.{name} import main" in script and len(script.splitlines()) < 10


def test_export_subcommand_writes_a_plain_sentence_transformers_folder(tmp_path, tiny_model, capsys):
    from sentence_transformers import SentenceTransformer

    tiny_model.merge_lora()
    tiny_model.save_pretrained(tmp_path / "model")
    cli(["export", str(tmp_path / "model"), str(tmp_path / "exported")])
    assert "exported" in capsys.readouterr().out
    plain = SentenceTransformer(str(tmp_path / "exported"), device="cpu")
    np.testing.assert_allclose(plain.encode(SENTENCES), tiny_model.encode(SENTENCES), atol=1e-5)


def test_the_console_script_exits_0_after_a_job(tmp_path, tiny_model):
    # The entry point hands main()'s return value to sys.exit: a job's summary there would mean status 1.
    tiny_model.save_pretrained(tmp_path / "model")
    done = subprocess.run([str(Path(sys.executable).parent / "text2token"), "evaluate", "--model", str(tmp_path / "model"),
                           "--tasks", "OfflineLeeSTS", "--quick", "4", "--output_dir", str(tmp_path / "eval"),
                           "--cache_dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "eval" / "summary.md").is_file()
