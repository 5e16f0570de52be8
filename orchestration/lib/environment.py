"""The configuration the code location is built from, and the executor it runs with — chosen
in ONE place.

Like a dbt manifest, evalhouse.yaml shapes the graph (one golden-runs asset per candidate
model), so it is read when the code location loads: $EVALHOUSE_CONFIG, else ./evalhouse.yaml.
Runs use the in-process executor by default: the multiprocess executor re-imports the code
location for every step (~7 s each on a small machine), which costs more than it parallelises
here. Set EVALHOUSE_DAGSTER_EXECUTOR=multiprocess where steps are heavy and cores are many
(docs/deploy.md).
"""

from __future__ import annotations

import os
from functools import cache

import dagster as dg

from evals.config import Config, load_config

EXECUTOR_ENV = "EVALHOUSE_DAGSTER_EXECUTOR"


@cache
def code_location_config() -> Config:
    return load_config()


def executor() -> dg.ExecutorDefinition:
    if os.environ.get(EXECUTOR_ENV, "in_process") == "multiprocess":
        return dg.multiprocess_executor
    return dg.in_process_executor


def candidate_models(config: Config) -> list[str]:
    """The models graded nightly on the golden sets: every configured model but the judges."""
    judges = {*config.judges, config.reference_judge, *(s.judge for s in config.suites.values())}
    return [name for name in config.models if name not in judges]
