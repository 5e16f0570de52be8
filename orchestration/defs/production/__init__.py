"""Production: what the app captured each day, a weighted sample of it re-graded, quality checks."""

import dagster as dg

from orchestration.defs.production import assets, checks


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[assets.production_runs, assets.production_samples],
        asset_checks=[checks.production_runs_quality],
    )
