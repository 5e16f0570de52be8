"""Golden sets: the suites (validated, versioned, loaded) and the nightly runs against them."""

import dagster as dg

from evals.config import Config
from orchestration.defs.golden import assets, checks


def build_defs(config: Config) -> dg.Definitions:
    """One golden-runs asset (and its quality check) per candidate model of `config`."""
    runs = assets.golden_run_assets(config)
    return dg.Definitions(
        assets=[assets.golden_sets, *runs.values()],
        asset_checks=checks.golden_run_checks(runs),
    )
