"""The machine a benchmark ran on, printed before its figures (docs/benchmarks.md records both).

Machines of one kind have differed 2-3x in Python speed between sessions (docs/benchmarks.md,
"Issue 16's goals on a slower machine"), which moves every absolute figure: CPU per call, rows
per second, seconds to a first request. A fixed loop timed on the spot says which machine a
figure came from, so figures from different sessions can be told apart.
"""

from __future__ import annotations

import os
import platform
import time

_LOOP = 1_000_000


def _loop_ms() -> float:
    started = time.perf_counter()
    total = 0
    for number in range(_LOOP):
        total += number
    return (time.perf_counter() - started) * 1000


def describe() -> str:
    """Cores, CPU, Python, and the best of three timings of a 1M-addition loop."""
    loop = min(_loop_ms() for _ in range(3))
    return (
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python"
        f" {platform.python_version()}; a {_LOOP:,}-addition loop takes {loop:.0f} ms"
        f" (load average {os.getloadavg()[0]:.2f})"
    )
