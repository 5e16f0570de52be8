"""Golden sets: the suites (validated, versioned, loaded) and the nightly runs against them."""

import dagster as dg

from orchestration.defs.golden import assets, checks

defs = dg.Definitions(
    assets=[assets.golden_sets, *assets.GOLDEN_RUN_ASSETS.values()],
    asset_checks=checks.GOLDEN_RUN_CHECKS,
)
