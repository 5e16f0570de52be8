"""Asset keys of the Python assets, in one place: the dbt translator and the checks name them
without importing the modules that define them."""

from __future__ import annotations

import re

import dagster as dg

from orchestration.lib.environment import candidate_models, code_location_config

GOLDEN_SETS = dg.AssetKey("golden_sets")
PRODUCTION_RUNS = dg.AssetKey("production_runs")
PRODUCTION_SAMPLES = dg.AssetKey("production_samples")
HUMAN_REVIEWS = dg.AssetKey("human_reviews")
RELEASE_GATE = dg.AssetKey("release_gate")
REJUDGE = dg.AssetKey("rejudge")


def slug(name: str) -> str:
    """A model name as an asset-key part (letters, digits, underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def golden_runs_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["golden_runs", slug(model)])


GOLDEN_RUNS = [golden_runs_key(model) for model in candidate_models(code_location_config())]

RAW_TABLE_WRITERS: dict[str, tuple[dg.AssetKey, ...]] = {
    "eval_runs": (PRODUCTION_RUNS, PRODUCTION_SAMPLES, REJUDGE, *GOLDEN_RUNS),
    "golden_items": (GOLDEN_SETS,),
    "golden_suites": (GOLDEN_SETS,),
    "human_reviews": (HUMAN_REVIEWS,),
}
"""raw table → the assets that write it; a staging model depends on the writers of its table."""
