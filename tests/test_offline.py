"""Nothing reaches the network at import time: the offline env is applied before any library loads."""

from __future__ import annotations

import subprocess
import sys

_GUARD = """
import socket
attempts = []
_connect = socket.socket.connect
def guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        attempts.append(host)
        raise OSError(f"network disabled in test: {host}")
    return _connect(self, address)
socket.socket.connect = guarded
_getaddrinfo = socket.getaddrinfo
def guarded_getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "127.0.0.1", "::1"):
        attempts.append(host)
        raise OSError(f"name resolution disabled in test: {host}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = guarded_getaddrinfo

import evals  # applies the offline env
import litellm, dbt.cli.main, dagster, great_expectations  # noqa: E401
litellm.completion_cost  # touch the cost map
import os
print("ATTEMPTS", attempts)
print("COSTMAP", os.environ["LITELLM_LOCAL_MODEL_COST_MAP"])
"""


def test_importing_the_stack_through_evals_makes_no_network_attempt() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _GUARD],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ATTEMPTS []" in result.stdout
    assert "COSTMAP True" in result.stdout
