"""`evalhouse run`: run a golden suite against a model, resumable, with a progress bar; a
pairwise suite (or `--pairwise`) is judged pair by pair in both orders (evals.pairwise)."""

from __future__ import annotations

import json
from datetime import date

import typer

from evals.cli._common import PROCESSES, config_or_exit, console, fail


def run(
    suite: str = typer.Option(..., "--suite", "-s", help="Configured suite name or suite file."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model name from evalhouse.yaml (default_model)."
    ),
    judge: str | None = typer.Option(None, "--judge", "-j", help="Judge model for answer suites."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, max=4096, help="Calls in flight (default: the model's)."
    ),
    processes: int | None = PROCESSES,
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="First K items only."),
    trials: int = typer.Option(1, "--trials", "-t", min=1, help="Repeat each item T times."),
    batch_key: str | None = typer.Option(
        None, "--batch-key", help="Logical batch (default: source:suite@version)."
    ),
    source: str = typer.Option("golden", "--source", help="golden or ci."),
    as_of: str | None = typer.Option(None, "--as-of", help="Date for simulated drift (ISO)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    pairwise: bool = typer.Option(
        False, "--pairwise", help="Judge --baseline against --candidate on an answer suite."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Pairwise side A: MODEL[@PROMPT file or version]."
    ),
    candidate: str | None = typer.Option(
        None, "--candidate", help="Pairwise side B: MODEL[@PROMPT file or version]."
    ),
    orders: int = typer.Option(2, "--orders", min=1, max=2, help="Pairwise: 2 = both orders."),
) -> None:
    """Run SUITE against MODEL: one run-log row per call; re-running makes only missing calls.

    A pairwise suite (or --pairwise with --baseline and --candidate on an answer suite) is
    judged pair by pair by JUDGE, in both orders unless --orders 1 (docs/pairwise.md).

    Exits 0 when every call settled (ok or parse_error), 1 when some still failed after
    retries (run again to retry them), 2 on bad input.
    """
    from evals.config import ConfigError
    from evals.fork_server import start_fork_server
    from evals.golden import GoldenSetError
    from evals.llm import preload_litellm
    from evals.runner import (
        RunnerError,
        RunRequest,
        default_judge,
        render_summary,
        resolve_suite,
        run_suite,
    )
    from evals.runner.processes import default_processes

    config = config_or_exit()
    run_model = model or config.default_model
    models = config.models
    in_flight = concurrency or (models[run_model].concurrency if run_model in models else 1)
    # LiteLLM's import overlaps loading the suite and the schema check: in a thread for one
    # process, in the workers' fork server (another core) for more
    if (processes or default_processes(in_flight, calls=1 << 30)) == 1:
        preload_litellm(config)
    else:
        start_fork_server()
    if source not in ("golden", "ci"):
        raise fail(f"--source must be golden or ci, not {source!r}")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not an ISO date") from None
    try:
        loaded = resolve_suite(config, suite)
    except (RunnerError, GoldenSetError) as exc:
        raise fail(str(exc)) from None
    if pairwise or baseline or candidate or loaded.kind == "pairwise":
        from evals.pairwise import PairwiseRequest

        request = PairwiseRequest(
            loaded,
            judge or default_judge(config, loaded) or "",
            baseline=baseline,
            candidate=candidate,
            orders=orders,
            trials=trials,
            limit=limit,
            source=source,
            batch_key=batch_key,
            as_of=day,
            concurrency=concurrency,
        )
        return _run_pairwise(config, request, progress and not as_json, as_json)
    model = run_model
    if model is None:
        raise fail("no --model given and no default_model in evalhouse.yaml")
    from evals import warehouse

    if warehouse.uses_embedded():
        warehouse.ensure_migrated()  # the embedded default is ours to keep at head; not an external one
    try:
        request = RunRequest(
            loaded,
            model,
            judge,
            trials=trials,
            limit=limit,
            source=source,
            batch_key=batch_key,
            as_of=day,
            concurrency=concurrency,
            processes=processes,
        )
        summary = run_suite(config, request, progress=progress and not as_json)
    except (RunnerError, ConfigError, GoldenSetError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
    else:
        render_summary(summary, console)
    if summary.unsettled_calls:
        raise typer.Exit(1)


def _run_pairwise(config, request, progress: bool, as_json: bool) -> None:
    """`evalhouse run` on a pairwise suite, or `--pairwise` on an answer suite."""
    from evals import warehouse
    from evals.config import ConfigError
    from evals.golden import GoldenSetError
    from evals.pairwise import render_pairwise, run_pairwise
    from evals.runner import RunnerError

    if not request.judge:
        raise fail("a pairwise run needs a judge: pass --judge")
    if warehouse.uses_embedded():
        warehouse.ensure_migrated()
    try:
        summary = run_pairwise(config, request, progress=progress)
    except (RunnerError, ConfigError, GoldenSetError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
    else:
        render_pairwise(summary, console)
    if summary.calls.unsettled_calls:
        raise typer.Exit(1)
