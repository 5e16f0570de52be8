"""Drift: the checks on the marts, the nightly job that feeds them, and its schedule."""

import dagster as dg

from orchestration.defs.drift import checks, jobs

defs = dg.Definitions(
    asset_checks=checks.DRIFT_CHECKS,
    jobs=[jobs.nightly_drift],
    schedules=[jobs.nightly_drift_schedule],
)
