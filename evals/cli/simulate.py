"""`evalhouse simulate traffic`: a realistic production stream through the real capture path."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import typer

from evals.cli._common import config_or_exit, console, fail

if TYPE_CHECKING:
    from evals.traffic import Drift, TrafficSummary

app = typer.Typer(
    help="Simulated data for demos and tests (offline, simulated models).", no_args_is_help=True
)


@app.command("traffic")
def traffic(
    days: int = typer.Option(14, "--days", min=1, help="Simulated days."),
    per_day: int = typer.Option(
        300, "--per-day", min=1, help="Graded submissions per day (±15 %)."
    ),
    start: str | None = typer.Option(
        None, "--start", help="First day (YYYY-MM-DD); default: DAYS days ago."
    ),
    drift: list[str] | None = typer.Option(
        None,
        "--drift",
        help="STAGE:+SHIFT@DAY, e.g. loops:+0.15@11: from that day 15% of the stage's failing verdicts turn passing (repeatable).",
    ),
    suite: str = typer.Option("intro-python", "--suite", help="The grader suite learners work on."),
    model: str | None = typer.Option(
        None, "--model", help="Production grader (default: default_model)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Default: simulator.seed."),
    review_share: float = typer.Option(
        0.06, "--review-share", min=0, max=1, help="Share of graded calls sent to human review."
    ),
) -> None:
    """Simulate learners submitting exercises to the production grader, captured like real traffic.

    The model is SIMULATED (evals.simulated): its verdicts come from golden labels, degraded by the
    configured accuracy, with drift applied from the given day.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from evals import warehouse
    from evals.config import ConfigError
    from evals.golden import GoldenSetError
    from evals.traffic import Drift, TrafficError, simulate_traffic

    config = config_or_exit()
    try:
        first = date.fromisoformat(start) if start else None
        drifts = [Drift.parse(text) for text in drift or []]
    except (ValueError, TrafficError) as exc:
        raise fail(str(exc)) from None
    warehouse.database_url()  # start the embedded warehouse if it is the one in use
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("days", total=days)
        try:
            summary = simulate_traffic(
                config,
                days=days,
                per_day=per_day,
                start=first,
                drift=drifts,
                suite_name=suite,
                model=model,
                seed=seed,
                review_share=review_share,
                progress=lambda _day: bar.advance(task),
            )
        except (TrafficError, ConfigError, GoldenSetError) as exc:
            raise fail(str(exc)) from None
    _print_summary(summary, drifts)


def _print_summary(summary: TrafficSummary, drifts: list[Drift]) -> None:
    """What was simulated and captured, so a demo can tell it worked."""
    stats = summary.capture_stats
    console.print(
        f"simulated {summary.calls} calls over {summary.days} days from {summary.first_day} "
        f"({summary.failed_calls} failed, {summary.retries} retried) for {summary.learners} learners"
    )
    console.print(
        f"captured: {stats.get('written', 0)} rows written, {stats.get('spooled', 0)} spooled, "
        f"{stats.get('dropped', 0)} dropped"
    )
    console.print(f"human reviews: {summary.reviews} labels on {summary.reviewed_runs} runs")
    if summary.reviews_waiting:
        console.print(
            f"{summary.reviews_waiting} human reviews wait for their spooled runs: stored when "
            "the spool replays (`evalhouse capture flush`)"
        )
    versions = ", ".join(
        f"{version}: {count}" for version, count in summary.by_prompt_version.most_common()
    )
    console.print(f"prompt versions: {versions}")
    for drift_spec in drifts:
        console.print(
            f"drift: {drift_spec.stage} {drift_spec.shift:+.2f} from day {drift_spec.day}"
        )
