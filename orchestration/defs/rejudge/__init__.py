"""Rejudging: stored graded calls re-graded by another judge, a day at a time (backfillable)."""

import dagster as dg

from orchestration.defs.rejudge import assets


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=[assets.rejudge])
