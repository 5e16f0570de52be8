"""The executor the code location runs with, and what evalhouse.yaml says about its shape —
chosen in ONE place.

Like a dbt manifest, evalhouse.yaml shapes the graph (one golden-runs asset per candidate
model); `orchestration.definitions.build_definitions` receives it loaded once and hands it to
every domain. Runs use the in-process executor by default: the multiprocess executor
re-imports the code location for every step (~7 s each on a small machine), which costs more
than it parallelises here. Set EVALHOUSE_DAGSTER_EXECUTOR=multiprocess where steps are heavy
and cores are many (docs/deploy.md).
"""

from __future__ import annotations

import os

import dagster as dg

from evals.config import Config

EXECUTOR_ENV = "EVALHOUSE_DAGSTER_EXECUTOR"


def executor() -> dg.ExecutorDefinition:
    if os.environ.get(EXECUTOR_ENV, "in_process") == "multiprocess":
        return dg.multiprocess_executor
    return dg.in_process_executor


def candidate_models(config: Config) -> list[str]:
    """The models graded nightly on the golden sets: every configured model but the judges."""
    judges = {*config.judges, config.reference_judge, *(s.judge for s in config.suites.values())}
    return [name for name in config.models if name not in judges]
