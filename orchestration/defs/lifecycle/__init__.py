"""The data lifecycle: each night, runs past their source's retention are erased."""

import dagster as dg

from orchestration.defs.lifecycle import assets


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=[assets.retention])
