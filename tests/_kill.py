"""kill -9 in the middle of a run, for the tests that prove a re-run settles each call once.

One place for what each of them needs: wait (briefly polling) until enough of the run has
settled while it still runs, SIGKILL it, and wait until it and every process it started are
gone, so nothing it left behind writes after the test has counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.05
SENT_REQUESTS_LAND_S = 0.3
"""How long requests a killed client had already written take to reach a loopback server (its
counters are read, or reset, after this)."""


def wait_while_running(
    run: subprocess.Popen, ready: Callable[[], bool], what: str, timeout_s: float = 600.0
) -> None:
    """Return once `ready()` holds; fail if `run` exits first (the kill would come too late) or
    after `timeout_s` (spawning workers imports LiteLLM: minutes on a loaded 2-core machine).
    On failure `run` is killed, so no test leaves a run behind."""
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert run.poll() is None, (f"exited before {what}", run.communicate())
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(POLL_S)
    except BaseException:
        run.kill()
        run.wait(10)
        raise


def kill_9(run: subprocess.Popen) -> None:
    """SIGKILL `run`, then wait until every process it had started has exited with it."""
    started = descendants(run.pid)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(10)
    deadline = time.monotonic() + 60
    while survivors := [_cmdline(pid) for pid in started if _alive(pid)]:
        assert time.monotonic() < deadline, f"outlived their parent: {survivors}"
        time.sleep(POLL_S)


def kill_9_when(
    run: subprocess.Popen, ready: Callable[[], bool], what: str, timeout_s: float = 600.0
) -> None:
    """`kill_9(run)` as soon as `ready()` holds, while it still runs."""
    wait_while_running(run, ready, what, timeout_s)
    kill_9(run)


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    return [p for child in children(pid) for p in (child, *descendants(child))]


def workers(pid: int) -> list[int]:
    """A run's worker processes: forked by its fork server, which is a child of the run."""
    (server,) = [p for p in children(pid) if b"forkserver" in _cmdline(p)]
    return children(server)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
