"""Pairwise: the configured A-vs-B comparison (evalhouse.yaml `pairwise:`), run nightly."""

import dagster as dg

from evals.config import Config
from orchestration.defs.pairwise import assets


def build_defs(config: Config) -> dg.Definitions:
    """The comparison asset when `pairwise:` is configured; nothing otherwise."""
    if config.pairwise is None:
        return dg.Definitions()
    return dg.Definitions(assets=[assets.pairwise_comparison])
