"""Quality checks on each day of golden runs (the GX suite of evals.quality)."""

from orchestration.defs.golden.assets import GOLDEN_RUN_ASSETS
from orchestration.lib.quality import run_log_quality_check

GOLDEN_RUN_CHECKS = [
    run_log_quality_check(asset, golden_model=model) for model, asset in GOLDEN_RUN_ASSETS.items()
]
