"""`evalhouse demo` (`make demo`): the whole story on the embedded default, in a few minutes.

1. the embedded warehouse, migrated;
2. 14 days of simulated production traffic (learners → grader → capture), with a pass-rate drift
   injected into one stage from day 11 — skipped when those days are already there;
3. the nightly drift job over the 14 nights as ONE Dagster run (a single-run backfill: golden
   sets and golden runs, production days and samples, dbt marts, every check), recorded in the
   persistent instance under $EVALHOUSE_HOME/dagster_home so `make dev` shows it afterwards;
4. the alerts it raised, with their links, and headline figures from the marts.

Re-running it adds no rows: traffic is not simulated twice, runs are idempotent per night,
alerts are deduplicated. THE MODELS ARE SIMULATED (evals.simulated): no network, no key.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evals.cli._common import config_or_exit, console

if TYPE_CHECKING:
    import psycopg

DAYS = 14
DRIFT_STAGE = "loops"
DRIFT_SHIFT = 0.4
"""The simulator turns this share of failing verdicts into passes: about +20 points here."""
DRIFT_DAY = 11
QUERIES = Path(__file__).with_name("queries")
"""The report's mart queries (the dbt exposure `demo_report`)."""


def demo(
    per_day: int = typer.Option(600, "--per-day", min=50, help="Graded submissions per day."),
    days: int = typer.Option(DAYS, "--days", min=4, help="Simulated days, ending yesterday."),
) -> None:
    """Simulate 14 days of production with drift, run the nightly job over them, show alerts."""
    from evals import warehouse
    from evals.cli.dev import prepare_dagster_home, run_nightly

    started = time.perf_counter()
    config = config_or_exit()
    if warehouse.uses_embedded():
        status = warehouse.embedded_server().ensure_running()
        console.print(f"[bold]warehouse[/]  embedded Postgres {status.describe()}")
    console.print(f"[bold]schema[/]     revision {warehouse.migrate()}")
    home, storage = prepare_dagster_home()
    console.print(f"[bold]dagster[/]    DAGSTER_HOME={home} (storage: {storage})")

    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    _simulate_traffic(config, first, days, per_day)
    run_id = run_nightly(first, last)
    _report(config, first, last, run_id)
    console.print(f"\n[dim]demo finished in {time.perf_counter() - started:.0f} s[/]")


def _simulate_traffic(config, first: date, days: int, per_day: int) -> None:
    """Production traffic through the real capture path, once per window."""
    from evals import warehouse
    from evals.traffic import TOUCHPOINT, Drift, simulate_traffic

    with warehouse.connect() as conn:
        present = conn.execute(
            "select count(distinct (started_at at time zone 'UTC')::date) from raw.eval_runs"
            " where source = 'production' and touchpoint = %s and started_at >= %s and started_at < %s",
            (TOUCHPOINT, first, first + timedelta(days=days)),
        ).fetchone()[0]
    if present >= days:
        console.print(f"[bold]traffic[/]    {days} days from {first} already simulated: kept")
        return
    drift = Drift(DRIFT_STAGE, DRIFT_SHIFT, DRIFT_DAY)
    console.print(
        f"[bold]traffic[/]    simulating {days} days × ~{per_day} graded submissions from {first}, "
        f"drift {drift.stage}:{drift.shift:+.2f} from day {drift.day} ({first + timedelta(days=drift.day - 1)})"
    )
    tick = time.perf_counter()
    summary = simulate_traffic(config, days=days, per_day=per_day, start=first, drift=[drift])
    console.print(
        f"             {summary.calls} calls, {summary.reviewed_runs} runs sent to human review, "
        f"{time.perf_counter() - tick:.0f} s"
    )


def _report(config, first: date, last: date, run_id: str) -> None:
    """Alerts with their links, headline figures from the marts, where to look next."""
    from evals import warehouse
    from evals.marts import load_query

    with warehouse.connect() as conn:
        alerts = _alerts_since(conn, first)
        stages = conn.execute(
            load_query(QUERIES / "stage_pass_rates.sql"),
            {"drift": first + timedelta(days=DRIFT_DAY - 1), "first": first, "last": last},
        ).fetchall()
        golden = golden_accuracy(conn)
        cost = conn.execute(
            load_query(QUERIES / "cost_by_source.sql"),
            {"first": first, "today": datetime.now(UTC).date()},
        ).fetchall()
    _print_alerts(config, alerts)
    _print_headline_figures(stages, golden, cost)
    console.rule("next")
    console.print(f"Dagster UI:  [bold]make dev[/]  → {config.alerts.dagster_url}/runs/{run_id}")
    console.print(
        f"Run view:    [bold]evalhouse serve[/]  → {config.alerts.base_url}/alerts/<id>, "
        f"{config.alerts.base_url}/runs/<run_id>"
    )
    console.print(
        "One call:    [bold]evalhouse show RUN_ID[/]   (replay it: evalhouse replay RUN_ID)"
    )


def _alerts_since(conn: psycopg.Connection, first: date) -> list[dict]:
    """The alerts whose window ends after the first simulated day, as dicts by column."""
    cur = conn.execute(
        "select alert_id, kind, severity, subject, message, example_run_ids, orchestrator_run_id,"
        " window_start, window_end, status, occurrences from raw.alerts where window_end > %s"
        " order by alert_id",
        (datetime(first.year, first.month, first.day, tzinfo=UTC),),
    )
    columns = [c.name for c in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def _print_alerts(config, alerts: list[dict]) -> None:
    from evals.alerts import links

    console.rule(f"alerts raised ({len(alerts)})")
    for alert in alerts:
        colour = {"critical": "red", "warning": "yellow"}.get(alert["severity"], "white")
        console.print(
            f"[{colour}]#{alert['alert_id']} {alert['severity'].upper()}[/] "
            f"[bold]{alert['kind']}[/] {alert['subject']}  "
            f"(nights {_nights(alert)}, found on {alert['occurrences']}, "
            f"{alert['status']})"
        )
        console.print(f"   {alert['message']}", highlight=False)
        for label, url in links(config.alerts, alert):
            console.print(f"   {label}: {url}", highlight=False)


def _print_headline_figures(stages: list[tuple], golden: list[tuple], cost: list[tuple]) -> None:
    from rich.table import Table

    console.rule("headline figures (marts)")
    table = Table(
        "stage",
        "pass rate before day " + str(DRIFT_DAY),
        "from day " + str(DRIFT_DAY),
        "verdicts",
        title="production pass rate per stage (graded calls, all prompt versions pooled)",
    )
    for stage, before, after, n in stages:
        table.add_row(stage, _pct(before), _pct(after), f"{int(n or 0):,}")
    console.print(table)
    table = Table(
        "model",
        "suite",
        "golden accuracy",
        "calls",
        title="golden accuracy over 14 nights (a judged answer counts by its judge)",
    )
    for model, suite, accuracy, calls in golden:
        table.add_row(model, suite, _pct(accuracy), f"{int(calls or 0):,}")
    console.print(table)
    table = Table("source", "calls", "cost (USD, simulated prices)", title="cost")
    for source, calls, usd in cost:
        table.add_row(source, f"{int(calls or 0):,}", f"{float(usd or 0):.4f}")
    console.print(table)


def golden_accuracy(conn: psycopg.Connection) -> list[tuple]:
    """(model, suite, golden accuracy, calls of the model under test) over every golden night,
    for the suites with golden truth (not a pairwise comparison's generated responses).

    Accuracy counts golden outcomes (int_golden_outcomes through fct_trend_daily): a judged
    answer is right when its judge's verdict passes.
    """
    from evals.marts import load_query

    return conn.execute(load_query(QUERIES / "golden_accuracy.sql")).fetchall()


def _nights(alert) -> str:
    """The alert's window [start, end) as the nights it covers."""
    start, end = alert["window_start"], alert["window_end"]
    if start is None or end is None:
        return "-"
    last = (end - timedelta(microseconds=1)).date()
    return f"{start:%Y-%m-%d}" if last == start.date() else f"{start:%Y-%m-%d} … {last}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"
