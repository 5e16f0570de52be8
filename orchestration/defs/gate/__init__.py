"""The release gate: baseline vs candidate on a golden suite, launched from the launchpad."""

import dagster as dg

from orchestration.defs.gate import assets


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=[assets.release_gate])
