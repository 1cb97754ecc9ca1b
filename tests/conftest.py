import atexit
import os
import shutil
import sys
import tempfile

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: one thread each (and in what they launch), not one per core each.
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

try:  # tests/ is on sys.path when it is not a package (pytest's default "prepend" import mode)
    from hub_server import LoopbackHub, NetworkGuard, configure_environment, disable_dataset_viewer
except ImportError:  # tests/ turned into a package
    from tests.hub_server import LoopbackHub, NetworkGuard, configure_environment, disable_dataset_viewer

# At import time, before any test module imports huggingface_hub/datasets/transformers:
# their constants read HF_ENDPOINT & co once, at import. The port is picked now, the server
# starts only when a test asks for `loopback_hub`.
LOOPBACK_HUB = LoopbackHub()
configure_environment(LOOPBACK_HUB)

# No test may reach a host outside loopback: the guard is on for the whole session, in this process
# and (through sitecustomize on PYTHONPATH) in every Python subprocess, which log what they refuse.
_GUARD_DIR = tempfile.mkdtemp(prefix="text2token-network-guard-")
atexit.register(shutil.rmtree, _GUARD_DIR, ignore_errors=True)  # after the session and its subprocesses
NETWORK_GUARD_LOG = os.path.join(_GUARD_DIR, "refused.log")
os.environ["TEXT2TOKEN_NETWORK_GUARD_LOG"] = NETWORK_GUARD_LOG
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard_site"),
     *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
# An xdist worker was started with the guard its parent's environment turns on (guard_site): hand over to
# this session's guard, whose refusals this process's tests check.
_inherited_guard = sys.modules.get("text2token_test_network_guard")
if _inherited_guard is not None:
    _inherited_guard.NetworkGuard.active = False
NetworkGuard.enable(log_path=NETWORK_GUARD_LOG)


def refused_connections() -> list[str]:
    """Every refusal so far, in this process and in subprocesses (each appends to the shared log)."""
    if not os.path.exists(NETWORK_GUARD_LOG):
        return []
    with open(NETWORK_GUARD_LOG, encoding="utf-8") as log:
        return log.read().splitlines()


@pytest.fixture(autouse=True)
def _no_network_outside_loopback():
    before = len(refused_connections())
    yield
    assert refused_connections()[before:] == [], "a test reached for a non-loopback host (refused by NetworkGuard)"


@pytest.fixture
def hub(loopback_hub):
    """The loopback Hub for one test, which must contact no other host."""
    blocked_before = len(loopback_hub.blocked_hosts)
    yield loopback_hub
    assert loopback_hub.blocked_hosts[blocked_before:] == [], "a non-loopback host was contacted"


@pytest.fixture(scope="session")
def loopback_hub():
    """A running Hub look-alike at $HF_ENDPOINT; non-loopback network access is refused and recorded."""
    disable_dataset_viewer()
    with LOOPBACK_HUB:
        yield LOOPBACK_HUB

pytest_plugins = ["model_fixtures"]


@pytest.fixture(autouse=True)
def _commands_raise_their_errors(monkeypatch):
    """In-process command calls raise the library's own exceptions, which tests match by type and text;
    the one line and exit status 2 a user sees instead are tested through the entry point
    (tests/test_command_line.py, whose subprocesses run without this variable)."""
    monkeypatch.setenv("TEXT2TOKEN_DEBUG", "1")
