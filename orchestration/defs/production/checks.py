"""Quality checks on each day of production calls (the GX suite of evals.quality)."""

from orchestration.defs.production.assets import production_runs
from orchestration.lib.quality import run_log_quality_check

production_runs_quality = run_log_quality_check(production_runs, sources=("production",))
