"""The executor the code location runs with, and what evalhouse.yaml says about its shape —
chosen in ONE place.

Like a dbt manifest, evalhouse.yaml shapes the graph (one golden-runs asset per candidate
model, `golden_slices` steps in each); `orchestration.definitions.build_definitions` receives it
loaded once and hands it to every domain. Runs use the in-process executor by default: the
multiprocess executor re-imports the code location for every step (~7 s each on a small
machine), which costs more than it parallelises here. EVALHOUSE_DAGSTER_EXECUTOR picks another
where steps are heavy and cores or machines are many (docs/deploy.md): `multiprocess` (this
machine), `dask` (the workers of the dask scheduler at EVALHOUSE_DASK_SCHEDULER; the
`distributed` extra) or `k8s` (a pod per step; the `k8s` extra); on those, the models' limits
are shared through the warehouse (`step_config`).
"""

from __future__ import annotations

import os

import dagster as dg

from evals.config import Config

EXECUTOR_ENV = "EVALHOUSE_DAGSTER_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "dask", "k8s")


def executor() -> dg.ExecutorDefinition:
    name = _executor_name()
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "dask":
        from orchestration.lib.distributed_executor import dask_executor

        return dask_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name != "in_process":
        raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected one of {', '.join(EXECUTORS)}")
    return dg.in_process_executor


def _executor_name() -> str:
    return os.environ.get(EXECUTOR_ENV, "in_process")


def step_config(config: Config) -> Config:
    """The config the steps run with: on an executor that runs steps side by side in other
    processes or machines, the models' concurrency and rpm are the warehouse's budget
    (evals.warehouse_limits), so K slices of a model at once share one budget, not K."""
    if _executor_name() == "in_process" or config.shared_limits == "warehouse":
        return config
    return config.model_copy(update={"shared_limits": "warehouse"})


def candidate_models(config: Config) -> list[str]:
    """The models graded nightly on the golden sets: every configured model but the judges."""
    judges = {*config.judges, config.reference_judge, *(s.judge for s in config.suites.values())}
    return [name for name in config.models if name not in judges]
