"""Asset keys of the Python assets, in one place: the dbt translator and the checks name them
without importing the modules that define them. The dbt models' keys come from the manifest
(`dagster_dbt.get_asset_key_for_model`), never from literals."""

from __future__ import annotations

import re

import dagster as dg

from evals.config import Config
from orchestration.lib.environment import candidate_models

GOLDEN_SETS = dg.AssetKey("golden_sets")
PRODUCTION_RUNS = dg.AssetKey("production_runs")
PRODUCTION_SAMPLES = dg.AssetKey("production_samples")
HUMAN_REVIEWS = dg.AssetKey("human_reviews")
RELEASE_GATE = dg.AssetKey("release_gate")
REJUDGE = dg.AssetKey("rejudge")
RETENTION = dg.AssetKey("retention")
PAIRWISE_COMPARISON = dg.AssetKey("pairwise_comparison")


def slug(name: str) -> str:
    """A model name as an asset-key part (letters, digits, underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def golden_runs_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["golden_runs", slug(model)])


def raw_table_writers(config: Config) -> dict[str, tuple[dg.AssetKey, ...]]:
    """raw table → the assets that write it; a staging model depends on the writers of its
    table (the golden runs are one asset per candidate model of `config`; the pairwise
    comparison exists when `config.pairwise` is set and stores its suite too)."""
    golden_runs = [golden_runs_key(model) for model in candidate_models(config)]
    pairwise = (PAIRWISE_COMPARISON,) if config.pairwise is not None else ()
    return {
        "eval_runs": (PRODUCTION_RUNS, PRODUCTION_SAMPLES, REJUDGE, *golden_runs, *pairwise),
        "golden_items": (GOLDEN_SETS, *pairwise),
        "golden_suites": (GOLDEN_SETS, *pairwise),
        "human_reviews": (HUMAN_REVIEWS,),
    }
