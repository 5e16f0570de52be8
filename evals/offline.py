"""Offline safety, in one place.

Several libraries of this stack reach the network at import or first use (LiteLLM's cost map,
dbt's and Dagster's telemetry, Hugging Face tokenizers). evalhouse runs where no provider is
reachable, so every entry point (the CLI, the Dagster code location, dbt invocations, tests)
applies these defaults before importing any of them. A value the user already set wins.
"""

import os

OFFLINE_ENV: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


def apply_offline_env() -> None:
    """Set every offline default the user has not set."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process (dbt, dagster dev) with the offline defaults applied."""
    env = dict(os.environ if base is None else base)
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    return env
