"""What a run starts from: the suite, its judge and the code version stamped on every row.

Kept apart from the run itself because the gate and the CLI resolve suites and judges without
making any call (evals.gate picks the judge it compares under with `default_judge`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import Suite
    from evals.prompts import PromptTemplate


class RunnerError(ValueError):
    """The run cannot start (unknown suite, missing judge, ...); nothing was called."""


@dataclass(frozen=True)
class RunRequest:
    """What to run, as one value: the CLI, the gate and Dagster build it; the runner checks it.

    `batch_key` names the logical batch (default `<source>:<suite>@<version>`): the same key
    skips what settled, a new key (e.g. a Dagster partition) runs everything again. `as_of`
    dates the calls for the simulator's drift scenarios; `concurrency` overrides the model's.
    `kind` and `started_by` describe the batch record (evals.batches); `started_by` defaults to
    the Dagster run when there is one, else `cli`. `processes` spreads the calls over that many
    worker processes sharing the models' limits (default: from the cores and the concurrency,
    evals.runner.processes.default_processes; 1 keeps the single event loop).
    """

    suite: Suite | str
    model: str
    judge: str | None = None
    trials: int = 1
    limit: int | None = None
    source: str = "golden"
    batch_key: str | None = None
    as_of: date | None = None
    orchestrator_run_id: str | None = None
    concurrency: int | None = None
    prompt_overrides: Mapping[str, PromptTemplate] | None = None
    kind: str = "run"
    started_by: str | None = None
    processes: int | None = None


@cache
def code_version() -> str:
    """The git commit of the code doing the run (EVALHOUSE_CODE_VERSION overrides)."""
    if env := os.environ.get("EVALHOUSE_CODE_VERSION"):
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"evalhouse-{version('evalhouse')}"
    except PackageNotFoundError:
        return "unknown"


def resolve_suite(config: Config, name_or_path: str) -> Suite:
    """A suite by its config name, else by file path (GoldenSetError if it is invalid)."""
    from evals.golden import load_suite

    if name_or_path in config.suites:
        return load_suite(config.resolve_path(config.suites[name_or_path].path))
    if Path(name_or_path).is_file():
        return load_suite(name_or_path)
    known = ", ".join(config.suites) or "none"
    raise RunnerError(
        f"unknown suite {name_or_path!r}: not a configured suite ({known}) nor a file"
    )


def default_judge(config: Config, suite: Suite) -> str | None:
    """The judge for a suite: its configured judge, else the reference judge, else the first."""
    entry = config.suites.get(suite.name)
    if entry is not None and entry.judge:
        return entry.judge
    return config.reference_judge or (config.judges[0] if config.judges else None)
