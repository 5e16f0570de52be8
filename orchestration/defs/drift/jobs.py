"""The nightly drift job and its schedule.

One job carries the whole night: load the golden sets, run them against every candidate model,
run the configured pairwise comparison, seal the day's production calls and sample them, erase
what is past its retention, rebuild the
marts with dbt, and run every check (quality, dbt tests, drift). All daily assets share one
partitions definition, so a night is one partition and a backfill of many nights is one run over
the range (every daily asset has a single-run backfill policy): `evalhouse backfill --from A
--to B` from the CLI, "Materialize → Launch backfill" in the UI.
The schedule fires at `drift.schedule` (cron, UTC) and targets the day that just ended.
"""

from datetime import UTC, timedelta

import dagster as dg

from evals.config import Config
from orchestration.lib.environment import executor

NIGHTLY_GROUPS = (
    "golden",
    "production",
    "lifecycle",
    "pairwise",
    "staging",
    "intermediate",
    "marts",
)

nightly_drift = dg.define_asset_job(
    name="nightly_drift",
    selection=dg.AssetSelection.groups(*NIGHTLY_GROUPS),
    executor_def=executor(),
    description=(
        "The night: golden runs, the pairwise comparison, the day's production calls and "
        "samples, retention, the marts, and every quality, dbt and drift check on them."
    ),
    tags={"evalhouse/job": "nightly"},
)


def nightly_drift_schedule(config: Config) -> dg.ScheduleDefinition:
    """The nightly job at `drift.schedule` (a cron from config, not the partition's)."""

    @dg.schedule(
        name="nightly_drift_schedule",
        job=nightly_drift,
        cron_schedule=config.drift.schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Run the nightly drift job for the day that just ended (cron: drift.schedule).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        """The partition of the UTC day before the tick."""
        day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
        return dg.RunRequest(run_key=f"nightly:{day.isoformat()}", partition_key=day.isoformat())

    return _schedule
