"""evalhouse: the LLM-evaluation library (no Dagster import here)."""

from evals.offline import apply_offline_env

apply_offline_env()
