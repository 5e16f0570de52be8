"""`evalhouse dev`: the Dagster UI over the evalhouse code location, on a persistent instance.

The Dagster instance lives in DAGSTER_HOME = $EVALHOUSE_HOME/dagster_home, so what
`evalhouse demo` ran is what `evalhouse dev` shows. Its storage (runs, events, schedules) is a database of its
own, `<warehouse db>_dagster`, on the warehouse's Postgres: one server to run and back up, and
Dagster's Alembic table never meets the warehouse's. Dagster gets a `postgresql+psycopg2://`
URL (in SQLAlchemy 2.1 a bare `postgresql://` means psycopg 3, on which dagster-postgres fails).
If that database cannot be created (an external warehouse without CREATEDB), or when
EVALHOUSE_DAGSTER_STORAGE=sqlite, the instance falls back to SQLite files under DAGSTER_HOME.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer

from evals.cli._common import console, fail

STORAGE_ENV = "EVALHOUSE_DAGSTER_STORAGE"
NIGHTLY_JOB = "nightly_drift"
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = REPO_ROOT / "workspace.yaml"


def dagster_home() -> Path:
    from evals import warehouse

    return warehouse.evalhouse_home() / "dagster_home"


def _storage_database_url() -> str:
    """The libpq URL of the Dagster database beside the warehouse, created if missing."""
    import psycopg

    from evals import warehouse

    url = warehouse.libpq_url(warehouse.database_url())
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_dagster"
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'create database "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _storage_yaml() -> tuple[str, str]:
    """(dagster.yaml storage section, a description for the console)."""
    from evals import warehouse

    if os.environ.get(STORAGE_ENV, "postgres") != "sqlite":
        try:
            url = warehouse.sqlalchemy_url(_storage_database_url(), "psycopg2")
        except Exception as exc:  # fall back rather than refuse to open the UI; say why
            console.print(
                f"[yellow]Dagster storage on Postgres unavailable ({type(exc).__name__}); "
                "using SQLite under DAGSTER_HOME[/]"
            )
        else:
            return f'storage:\n  postgres:\n    postgres_url: "{url}"\n', "Postgres"
    return "", "SQLite"


def prepare_dagster_home() -> tuple[Path, str]:
    """Create DAGSTER_HOME with a dagster.yaml (telemetry off, storage as above); set the env.

    The file is rewritten on every call: the embedded server's socket path is part of the URL.
    """
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    storage, described = _storage_yaml()
    config = (
        textwrap.dedent(
            """\
        # Written by `evalhouse dev` / `evalhouse demo`; edits are overwritten.
        telemetry:
          enabled: false
        run_coordinator:
          module: dagster.core.run_coordinator
          class: QueuedRunCoordinator
          config:
            max_concurrent_runs: 2
        """
        )
        + storage
    )
    (home / "dagster.yaml").write_text(config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home, described


def dev(
    host: str = typer.Option("127.0.0.1", help="Address the UI listens on."),
    port: int = typer.Option(3000, help="Port of the UI."),
) -> None:
    """Open the Dagster UI (and daemon) on the evalhouse code location."""
    from evals import warehouse
    from evals.offline import offline_env

    if not WORKSPACE.exists():
        raise fail(f"{WORKSPACE} not found: run `evalhouse dev` from a source checkout")
    if warehouse.uses_embedded():
        warehouse.embedded_server().ensure_running()
    warehouse.migrate()
    home, storage = prepare_dagster_home()
    console.print(f"[bold]DAGSTER_HOME[/] {home} (storage: {storage}, telemetry off)")
    console.print(f"[bold]Dagster UI[/] http://{host}:{port}")
    dagster = Path(sys.executable).with_name("dagster")
    args = [str(dagster), "dev", "-w", str(WORKSPACE), "-h", host, "-p", str(port)]
    env = offline_env()
    env["DAGSTER_HOME"] = str(home)
    os.chdir(REPO_ROOT)
    # A parent that ignored SIGINT/SIGTERM (a script, CI, nohup) would leave dagster dev deaf to
    # them: restore the defaults so Ctrl-C and SIGTERM stop it cleanly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execve(args[0], args, env)


def run_nightly(first: date, last: date) -> str:
    """The nightly job over the nights [first, last] as ONE run (a single-run backfill: every
    daily asset takes the whole range), in this process, recorded in the persistent instance."""
    import time
    from contextlib import redirect_stdout

    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    log_path = dagster_home() / "logs" / f"nightly-{first}-{last}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]nightly[/]    job `{NIGHTLY_JOB}` over {first} … {last} (one run, in-process)"
    )
    console.print(f"             dbt and step output: {log_path}")
    tick = time.perf_counter()
    repository = ReconstructableRepository.for_module(
        "orchestration.definitions", "defs", working_directory=str(REPO_ROOT)
    )
    # dagster-dbt echoes every dbt event to stdout: keep it in a file, not on the console.
    with dg.DagsterInstance.get() as instance, log_path.open("w") as log, redirect_stdout(log):
        result = dg.execute_job(
            repository.get_reconstructable_job(NIGHTLY_JOB),
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
                "evalhouse/source": "cli",
            },
        )
        checks = [
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
    failed = sorted(
        f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed
    )
    console.print(
        f"             run {result.run_id} {'succeeded' if result.success else '[red]FAILED[/]'} in "
        f"{time.perf_counter() - tick:.0f} s; {len(checks)} checks, {len(failed)} failed"
        + (f": {', '.join(failed)}" if failed else "")
    )
    if not result.success:
        raise fail(f"the nightly run failed: see `make dev` → Runs → {result.run_id}", code=1)
    return result.run_id


def backfill(
    first: str = typer.Option(..., "--from", help="First night (YYYY-MM-DD)."),
    last: str | None = typer.Option(None, "--to", help="Last night (default: yesterday, UTC)."),
) -> None:
    """Run the nightly drift job over past nights as one run (visible in `evalhouse dev`)."""
    from evals import warehouse

    try:
        start = date.fromisoformat(first)
        end = date.fromisoformat(last) if last else datetime.now(UTC).date() - timedelta(days=1)
    except ValueError as exc:
        raise fail(f"dates are YYYY-MM-DD: {exc}") from None
    if end < start:
        raise fail(f"--to {end} is before --from {start}")
    warehouse.migrate()
    prepare_dagster_home()
    run_nightly(start, end)
