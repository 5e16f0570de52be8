"""dagster-dask's executor on an existing dask scheduler, with one compatibility fix.

dagster-dask 0.29 submits each step with the run (a `DagsterRun`) as an argument, and dask ≥
2024.11 parses task arguments by walking every tuple in them, while a partitioned run holds a
`TimeWindowPartitionsDefinition`, a Dagster record that refuses iteration: every partitioned run
failed at submit. Around dagster-dask's own `execute`, the run's process parses Dagster's
records as plain values (they are data to dask, never tasks); nothing else is changed. Remove
this module when dagster-dask passes the run opaquely.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_dask.executor import DaskExecutor

DASK_SCHEDULER_ENV = "EVALHOUSE_DASK_SCHEDULER"


@contextmanager
def _dagster_records_as_data() -> Iterator[None]:
    from dask import _task_spec
    from distributed import client

    parse_input = _task_spec.parse_input

    def parse(obj):
        return obj if isinstance(obj, dg.DagsterRun) else parse_input(obj)

    modules = (_task_spec, client)  # the client calls it by its own name, dask recursively
    for module in modules:
        module.parse_input = parse
    try:
        yield
    finally:
        for module in modules:
            module.parse_input = parse_input


class _ExistingSchedulerExecutor(DaskExecutor):
    def execute(self, plan_context, execution_plan):
        with _dagster_records_as_data():
            yield from super().execute(plan_context, execution_plan)


@dg.executor(
    name="dask",
    config_schema={"address": dg.Field(dg.StringSource, description="tcp://host:8786")},
    requirements=dg.multiple_process_executor_requirements(),
)
def _dask_executor(init_context: dg.InitExecutorContext) -> DaskExecutor:
    """Every step a task on the workers of the dask scheduler at `address`."""
    return _ExistingSchedulerExecutor(
        "existing", {"address": init_context.executor_config["address"]}
    )


dask_executor = _dask_executor.configured({"address": {"env": DASK_SCHEDULER_ENV}}, name="dask")
"""The scheduler's address from EVALHOUSE_DASK_SCHEDULER, read when a run starts."""
