"""Pairwise: the configured A-vs-B comparison run nightly (evalhouse.yaml `pairwise:`) and the
judge-bias check on the pairwise marts."""

import dagster as dg

from evals.config import Config
from orchestration.defs.pairwise import assets, checks


def build_defs(config: Config, warehouse: dg.AssetsDefinition) -> dg.Definitions:
    """The judge-bias check always (it attaches to `warehouse`, the dbt assets: its key comes
    from the manifest); the comparison asset only when `pairwise:` is configured."""
    comparison = [] if config.pairwise is None else [assets.pairwise_comparison]
    return dg.Definitions(assets=comparison, asset_checks=[checks.judge_bias_check(warehouse)])
