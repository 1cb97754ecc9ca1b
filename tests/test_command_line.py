"""Every user mistake answered as a user sees it: one line naming the thing, exit status 2, no traceback;
no abbreviated option starts a run; `--version` (issue 23). The mistakes run through `cli.main` in this
process (the console script's own function, without the tests' raising mode); the installed entry point
itself is run as a subprocess for `--version` and one mistake (each launch costs an import of torch)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import text2token

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINT = Path(sys.executable).parent / "text2token"
RECIPE = str(ROOT / "recipes" / "smollm2-135m" / "stage1.yaml")


def _launch(*argv, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("TEXT2TOKEN_DEBUG", None)
    command = [str(ENTRY_POINT)] if ENTRY_POINT.is_file() else [sys.executable, "-m", "text2token.cli"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "bad.yaml").write_text("output_dir: [unclosed\n  learning_rate: 1\n")
    (root / "model").mkdir()  # an existing model folder: export refuses the output before reading it
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("mine")
    return root


MISTAKES = {
    "train: mistyped flag": (["train", "--config", RECIPE, "--learning_rat", "1e-4"], "--learning_rat"),
    "train: abbreviated flag": (["train", "--config", RECIPE, "--step", "3"], "--step"),
    "train: missing YAML": (["train", "--config", "no/such/recipe.yaml"], "no/such/recipe.yaml"),
    "train: bad YAML": (["train", "--config", "bad.yaml"], "bad.yaml: not valid YAML (line"),
    "train: missing model path": (["train", "--config", RECIPE, "--backbone", "./no_such_model"], "./no_such_model"),
    "train: bad value": (["train", "--config", RECIPE, "--max_steps", "many"], "many"),
    "pipeline: abbreviated flag": (["pipeline", "--step", "3"], "--step"),
    "pipeline: missing YAML": (["pipeline", "--stage1", "missing.yaml", "--skip_eval"], "missing.yaml"),
    "export: missing model": (["export", "outputs/no/stage2", "out"], "outputs/no/stage2"),
    "export: bare missing model": (["export", "stage2", "out"], "stage2"),
    "export: non-empty output": (["export", "model", "full"], "full exists and is not an empty folder"),
    "explain: missing model": (["explain", "./nowhere", "a text"], "./nowhere"),
    "evaluate: unknown flag": (["evaluate", "--modle", "x"], "--modle"),
    "evaluate: missing model": (["evaluate", "--model", "runs/stage2/"], "runs/stage2/"),
    "top level: unknown command": (["trian"], "trian"),
}


def _run(*argv, cwd, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """`text2token ARGV` through the console script's function, as a user runs it: (status, stdout, stderr)."""
    from text2token.cli import main

    monkeypatch.delenv("TEXT2TOKEN_DEBUG", raising=False)
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def _check_one_line_error(done, named, workdir):
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and named in errors[0], done.stderr[-3000:]
    assert errors[0].startswith("text2token")
    assert (workdir / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_is_one_line_and_status_2(case, workdir, monkeypatch, capsys):
    argv, named = MISTAKES[case]
    _check_one_line_error(_run(*argv, cwd=workdir, monkeypatch=monkeypatch, capsys=capsys), named, workdir)


def test_the_installed_entry_point_answers_a_mistake_and_its_version(workdir):
    argv, named = MISTAKES["train: missing model path"]
    _check_one_line_error(_launch(*argv, cwd=workdir), named, workdir)
    done = _launch("--version", cwd=workdir)
    assert done.returncode == 0 and done.stdout.strip() == f"text2token {text2token.__version__}"


def test_train_help_shows_the_recipe_first_and_everything_behind_help_all(workdir, monkeypatch, capsys):
    short = _run("train", "--help", cwd=workdir, monkeypatch=monkeypatch, capsys=capsys)
    assert short.returncode == 0 and short.stdout.startswith("usage: text2token train --config YAML")
    lines = short.stdout.splitlines()
    config_line = next(i for i, line in enumerate(lines) if line.strip().startswith("--config"))
    assert config_line < next(i for i, line in enumerate(lines) if "--backbone" in line) < \
        next(i for i, line in enumerate(lines) if "--learning_rate" in line)
    assert "--help-all" in short.stdout and "--fsdp_config" not in short.stdout and len(lines) < 250
    full = _run("train", "--help-all", cwd=workdir, monkeypatch=monkeypatch, capsys=capsys)
    assert full.returncode == 0 and "--fsdp_config" in full.stdout and "--config" in full.stdout
