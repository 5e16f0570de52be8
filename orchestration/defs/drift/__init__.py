"""Drift: the checks on the marts, the nightly job that feeds them, and its schedule."""

import dagster as dg

from evals.config import Config
from orchestration.defs.drift import checks, jobs


def build_defs(config: Config, warehouse: dg.AssetsDefinition) -> dg.Definitions:
    """`warehouse` is the dbt assets the checks attach to (their keys come from its manifest)."""
    return dg.Definitions(
        asset_checks=[check.on(warehouse) for check in checks.DRIFT_CHECKS],
        jobs=[jobs.nightly_drift],
        schedules=[jobs.nightly_drift_schedule(config)],
    )
