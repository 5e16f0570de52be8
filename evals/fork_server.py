"""The fork server a run's worker processes come from (evals.runner.processes).

A clean process (one thread, no connections) that imports what every worker needs once
(evals.runner.fork_preload) and forks a worker per request. Starting it costs its caller a
process exec; its imports (seconds, mostly LiteLLM) run on another core. This module imports
nothing else, so `evalhouse` can start the server before its own imports when the command line
asks for worker processes, and the server's imports overlap all of the command's start-up.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

PRELOAD = ["evals.runner.fork_preload"]


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    """multiprocessing's fork-server context, preloading in the server what workers need."""
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(PRELOAD)
    return mp


def start_fork_server() -> None:
    """Start the fork server now (once per process; its workers come later)."""
    from multiprocessing import forkserver

    forkserver_context()
    forkserver.ensure_running()
