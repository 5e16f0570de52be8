"""Production: what the app captured each day, a weighted sample of it re-graded, quality checks."""

import dagster as dg

from orchestration.defs.production import assets, checks

defs = dg.Definitions(
    assets=[assets.production_runs, assets.production_samples],
    asset_checks=[checks.production_runs_quality],
)
