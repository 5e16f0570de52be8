"""`evalhouse serve`: the run view, alerts and the ops overview on http://HOST:PORT."""

from __future__ import annotations

import os
import secrets

import typer

from evals.cli._common import config_or_exit, console, fail


def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default web.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default web.port, 8000)."),
    batch_worker: bool = typer.Option(
        True,
        "--batch-worker/--no-batch-worker",
        help="Run evaluations started through the API (POST /api/v1/batches) in this server"
        " (where Dagster is deployed, only those it could not launch) and deliver callbacks.",
    ),
) -> None:
    """Serve the web app. Every page needs the token from $EVALHOUSE_WEB_TOKEN (web.token_env)."""
    config = config_or_exit()
    token = os.environ.get(config.web.token_env, "")
    if not token:
        # Like Jupyter: a one-off token for this process, shown only on the operator's terminal.
        token = secrets.token_urlsafe(24)
        console.print(
            f"[yellow]{config.web.token_env} is not set;[/] this run's token: {token}",
            highlight=False,
        )
    elif len(token) < 16:
        raise fail(f"{config.web.token_env} must be at least 16 characters")
    import psycopg
    import uvicorn

    from evals.redact import scrub
    from evals.warehouse.embedded import EmbeddedPostgresError
    from evals.web.app import create_app
    from evals.web.db import WebDatabase, web_conninfo

    try:  # fail here, plainly, rather than as a pool timeout inside the server's start-up
        conninfo = web_conninfo(config)
        psycopg.connect(conninfo, connect_timeout=10).close()
    except (psycopg.OperationalError, EmbeddedPostgresError) as exc:
        raise fail(
            f"cannot connect as the web role ({config.web.role} or"
            f" ${config.web.database_url_env}): {scrub(str(exc).strip())}\n"
            "create it and its grants (migration 0003, docs/web.md)"
        ) from None

    host = host or config.web.host
    port = port or config.web.port
    from evals.batch_launch import LaunchError, dagster_launcher

    try:
        launcher = dagster_launcher(config.alerts.dagster_url, config.api.batch_runner)
    except LaunchError as exc:
        raise fail(f"api.batch_runner is dagster, but {exc}") from None
    worker = None
    if batch_worker:
        from evals import warehouse
        from evals.batch_requests import BatchWorker

        worker = BatchWorker(
            config, lambda: warehouse.connect(autocommit=True), claim_queued=launcher is None
        )
    runner = f"Dagster runs ({launcher.url})" if launcher else "this server" if worker else "none"
    console.print(f"evaluations started over the API run in: {runner}")
    app = create_app(
        config,
        token,
        database=WebDatabase(conninfo),
        batch_worker=worker,
        batch_launcher=launcher,
    )
    console.print(f"evalhouse web on http://{host}:{port}/ (sign in with the token)")
    uvicorn.run(
        app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False
    )
