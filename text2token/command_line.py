"""What every `text2token` command shares at its edge with the user: parsers that take no abbreviations
and answer a mistake with one line, and the boundary that turns a user's mistake into that line and
exit status 2 instead of a traceback.

A user's mistake is a `UsageError`, or one of the errors the commands raise with a message written for
the user (a missing or existing file or folder, a value a check refused, bad YAML). Set
`TEXT2TOKEN_DEBUG=1` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

USAGE_ERROR_STATUS = 2  # argparse's status for a command-line mistake


class UsageError(ValueError):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` without abbreviations, whose errors are one line naming the option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        _fail(self.prog, f"{message} (see {self.prog} --help)")


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that carry a message for the user rather than a bug report."""
    import yaml

    from .export import ExportError
    from .output_lock import OutputFolderLockedError

    return (UsageError, ExportError, OutputFolderLockedError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError, yaml.YAMLError, ValueError)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_command(prog: str, main: Callable[[list[str]], object], argv: list[str]) -> None:
    """Run `main(argv)`; a user's mistake prints `prog: error: <one line>` and exits with status 2."""
    try:
        main(argv)
    except SystemExit as exc:  # argparse's own exits (help, version) pass; a message is a mistake
        if isinstance(exc.code, str):
            _fail(prog, exc.code)
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if os.environ.get("TEXT2TOKEN_DEBUG") or not isinstance(exc, user_errors()):
            raise
        _fail(prog, one_line(exc))


def _fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(USAGE_ERROR_STATUS)


def check_model_path(name: str, option: str) -> None:
    """Refuse a model that names a local path which is not there, before a library reads it as a Hub id
    ("Repo id must be in the form ..."). Hub ids (owner/name) and the embedded default pass."""
    from .backbones import EMBEDDED_ALIASES
    from .cards import hub_repo_id

    if name in EMBEDDED_ALIASES or os.path.exists(name):
        return
    if hub_repo_id(name) and not name.startswith((".", "~", os.sep)):
        return
    raise UsageError(f"{option} {name}: no such file or folder (nor a Hub repo id 'owner/name')")
