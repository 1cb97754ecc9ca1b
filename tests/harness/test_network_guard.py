"""The NetworkGuard refuses non-loopback hosts, in this process and in subprocesses, without sending
anything: the socket layer below the guard is a stub that records what would have gone out."""

import json
import os
import subprocess
import sys

import pytest

from conftest import NETWORK_GUARD_LOG, refused_connections
from hub_server import NetworkGuard
from launch_helpers import launch_env

OUTSIDE = ("203.0.113.7", 443)  # TEST-NET-3: documentation addresses, never routed


class StubSocket:
    """Stands in for the C socket: raises the audit event CPython raises before a real connect, then
    records the address where a real socket would reach the network."""

    def __init__(self):
        self.sent = []

    def connect(self, address):
        sys.audit("socket.connect", self, address)
        self.sent.append(address)


@pytest.fixture
def own_refusals():
    """Refusals this test provokes on purpose are checked here, then taken out of the session's
    records (the autouse check fails a test on any other refusal)."""
    blocked_before = len(NetworkGuard.blocked)
    log_before = open(NETWORK_GUARD_LOG).read() if os.path.exists(NETWORK_GUARD_LOG) else ""
    yield
    del NetworkGuard.blocked[blocked_before:]
    with open(NETWORK_GUARD_LOG, "w") as log:
        log.write(log_before)


def test_the_guard_refuses_and_records_a_non_loopback_connect(own_refusals):
    stub = StubSocket()
    with pytest.raises(OSError, match="refusing non-loopback host '203.0.113.7'"):
        stub.connect(OUTSIDE)
    with pytest.raises(OSError, match="refusing non-loopback host 'example.org'"):
        sys.audit("socket.getaddrinfo", "example.org", 443, 0, 0, 0)
    assert stub.sent == [], "the refused address reached the socket layer"
    assert NetworkGuard.blocked[-2:] == ["socket.connect 203.0.113.7", "socket.getaddrinfo example.org"]
    assert refused_connections()[-1].endswith("socket.getaddrinfo example.org")
    stub.connect(("127.0.0.1", 9))
    stub.connect(("::1", 9, 0, 0))
    assert stub.sent == [("127.0.0.1", 9), ("::1", 9, 0, 0)], "loopback must pass"


@pytest.mark.parametrize("env", ["inherited", "launch_env"])
def test_the_guard_is_on_in_subprocesses(own_refusals, env):
    # launch_env() is what the multi-process and crash tests hand their subprocesses.
    child = f"""
import json, sys
sent = []
try:
    sys.audit("socket.connect", None, {OUTSIDE!r})
    sent.append("connect")
except OSError as exc:
    print(json.dumps({{"refused": str(exc), "sent": sent}}))
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True,
                            env=launch_env() if env == "launch_env" else None)
    report = json.loads(result.stdout)
    assert "refusing non-loopback host '203.0.113.7'" in report["refused"] and report["sent"] == []
    assert refused_connections()[-1].split(" ", 1)[1] == "socket.connect 203.0.113.7"


def test_names_the_hosts_file_maps_to_loopback_pass_and_others_do_not(tmp_path, own_refusals):
    import hub_server

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1 buildbox  # this machine\n203.0.113.9 outside-box\n")
    assert hub_server._hosts_file_loopback_names(str(hosts)) == {"localhost", "buildbox"}
    # This machine's own name, as the hosts file maps it: a lookup of it reads that file, sends nothing.
    for name in hub_server._hosts_file_loopback_names():
        sys.audit("socket.gethostbyaddr", name)
    with pytest.raises(OSError, match="refusing non-loopback host 'outside-box'"):
        sys.audit("socket.gethostbyaddr", "outside-box")
