"""Enables the test NetworkGuard in every Python subprocess a test starts: tests/conftest.py puts this
folder first on PYTHONPATH, and Python imports `sitecustomize` at start-up. Loaded by file path, so
tests/ itself does not land on the child's sys.path."""

import importlib.util
import os
import sys

_log = os.environ.get("TEXT2TOKEN_NETWORK_GUARD_LOG")
if _log:
    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hub_server.py")
    _spec = importlib.util.spec_from_file_location("text2token_test_network_guard", _path)
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _module  # found there by a pytest worker's conftest, which hands over to its own
    _spec.loader.exec_module(_module)
    _module.NetworkGuard.enable(log_path=_log)
