"""Quality checks on each day of golden runs (the GX suite of evals.quality)."""

import dagster as dg

from orchestration.lib.quality import run_log_quality_check


def golden_run_checks(assets: dict[str, dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """`run_log_quality` on each model's golden runs (model → asset)."""
    return [run_log_quality_check(asset, golden_model=model) for model, asset in assets.items()]
