"""`evalhouse dbt ARGS…`: dbt on the warehouse in use, every argument passed through.

`evalhouse dbt build`, `evalhouse dbt test -s fct_leaderboard`, `evalhouse dbt docs generate`…
The connection (the embedded Postgres unless EVALHOUSE_DATABASE_URL is set) and the mart
settings from evalhouse.yaml come from `evals.dbt.dbt_env()`.
"""

from __future__ import annotations

import typer

from evals.cli._common import config_or_exit, fail

CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def dbt(ctx: typer.Context) -> None:
    """Run dbt on the warehouse: `evalhouse dbt build`, `evalhouse dbt docs generate`, …"""
    from evals.dbt import dbt_env, run_dbt

    args = list(ctx.args)
    if not args:
        raise fail("give dbt a command, e.g. `evalhouse dbt build` (`evalhouse dbt --help`)")
    env = dbt_env(config=config_or_exit())
    result = run_dbt(args, env=env)
    if result.exception is not None:
        raise fail(f"dbt could not run: {result.exception}")
    if not result.success:
        raise typer.Exit(1)
