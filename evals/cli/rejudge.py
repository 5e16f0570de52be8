"""`evalhouse rejudge`: re-grade stored calls with another judge, estimate printed first."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

from evals.cli._common import PROCESSES, config_or_exit, console, fail


def _day(option: str, value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise fail(f"{option} {value!r} is not an ISO date") from None


def rejudge(
    judge: str = typer.Option(..., "--judge", "-j", help="Judge model from evalhouse.yaml."),
    since: str | None = typer.Option(None, "--since", help="First day (UTC) of graded calls."),
    until: str | None = typer.Option(None, "--until", help="Last day (UTC) of graded calls."),
    suite: str | None = typer.Option(None, "--suite", "-s", help="Only this suite's calls."),
    sources: list[str] | None = typer.Option(
        None,
        "--source",
        help="Source of graded calls (repeatable; default golden, ci, production, import).",
    ),
    prompt_version: str | None = typer.Option(
        None, "--prompt-version", help="Re-render with this version of the call's prompt."
    ),
    prompt_file: Path | None = typer.Option(
        None, "--prompt-file", help="Re-render with this template file."
    ),
    processes: int | None = PROCESSES,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the estimate only."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Re-grade stored graded calls with JUDGE as new rows (source rejudge, parent = the call).

    Prints a cost and duration estimate before any call; --dry-run stops there. Re-running
    makes only the calls still missing. Exits 1 when some calls are still unsettled (failed,
    or lost with a worker process): run again to retry.
    """
    from evals import warehouse
    from evals.rejudge import DEFAULT_SOURCES, RejudgeError, RejudgeRequest, run_rejudge

    config = config_or_exit()
    request = RejudgeRequest(
        judge=judge,
        since=_day("--since", since),
        until=_day("--until", until),
        suite=suite,
        sources=tuple(sources) if sources else DEFAULT_SOURCES,
        prompt_version=prompt_version,
        prompt_file=prompt_file,
    )
    if warehouse.uses_embedded():
        warehouse.ensure_migrated()  # the embedded default is ours to keep at head; not an external one
    echo = (
        (lambda line: None)
        if as_json
        else (lambda line: console.print(line, highlight=False, markup=False))
    )
    try:
        summary = run_rejudge(config, request, dry_run=dry_run, echo=echo, processes=processes)
    except RejudgeError as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
    elif not dry_run:
        lost = f" ({summary.lost_processes} died)" if summary.lost_processes else ""
        console.print(
            f"new rows: {summary.new_rows}, failed calls: {summary.failed}, "
            f"unsettled: {summary.unsettled}, recorded cost ${summary.cost_usd:.4f}, "
            f"{summary.elapsed_s:.1f} s, processes {summary.processes}{lost}",
            highlight=False,
        )
    if summary.unsettled:
        raise typer.Exit(1)
