"""Pairwise: the judge-bias check on the pairwise marts (the nightly comparison asset joins it)."""

import dagster as dg

from orchestration.defs.pairwise import checks


def build_defs(warehouse: dg.AssetsDefinition) -> dg.Definitions:
    """`warehouse` is the dbt assets the check attaches to (its key comes from the manifest)."""
    return dg.Definitions(asset_checks=[checks.judge_bias_check(warehouse)])
