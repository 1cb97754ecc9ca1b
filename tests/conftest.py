import pytest

try:  # tests/ is on sys.path when it is not a package (pytest's default "prepend" import mode)
    from hub_server import LoopbackHub, NetworkGuard, configure_environment, disable_dataset_viewer
except ImportError:  # tests/ turned into a package
    from tests.hub_server import LoopbackHub, NetworkGuard, configure_environment, disable_dataset_viewer

# At import time, before any test module imports huggingface_hub/datasets/transformers:
# their constants read HF_ENDPOINT & co once, at import. The port is picked now, the server
# starts only when a test asks for `loopback_hub`.
LOOPBACK_HUB = LoopbackHub()
configure_environment(LOOPBACK_HUB)


@pytest.fixture(scope="session")
def loopback_hub():
    """A running Hub look-alike at $HF_ENDPOINT; non-loopback network access is refused and recorded."""
    disable_dataset_viewer()
    NetworkGuard.enable()
    with LOOPBACK_HUB:
        yield LOOPBACK_HUB
    NetworkGuard.active = False

pytest_plugins = ["model_fixtures"]
