"""`evalhouse gate`: baseline vs candidate on one golden suite → deploy / no-deploy / insufficient.

Exit codes are for CI: 0 deploy, 1 no-deploy, 3 insufficient data, 2 bad input or config.
"""

from __future__ import annotations

from pathlib import Path

import typer

from evals.cli._common import config_or_exit, console, fail

_STYLE = {"deploy": "bold green", "no-deploy": "bold red", "insufficient-data": "bold yellow"}
_STATUS_STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "red",
    "insufficient": "yellow",
    "skipped": "dim",
}


def gate(
    suite: str = typer.Option(..., "--suite", help="Suite name from evalhouse.yaml."),
    baseline: str = typer.Option(..., "--baseline", help="MODEL or MODEL@PROMPT_VERSION."),
    candidate: str = typer.Option(..., "--candidate", help="MODEL or MODEL@PROMPT_VERSION."),
    gate_config: Path | None = typer.Option(
        None, "--config", help="gate.yaml overriding the `gate:` section of evalhouse.yaml."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Where to write the Markdown report (default under EVALHOUSE_HOME)."
    ),
    run_missing: bool = typer.Option(
        True, "--run-missing/--no-run", help="Run items a side has not settled yet."
    ),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help=(
            "JUDGE[@PROMPT_VERSION]: decide on this judge's pairwise preferences instead (pairs"
            " not yet judged are judged first unless --no-run)."
        ),
    ),
) -> None:
    """Decide whether CANDIDATE may replace BASELINE, with statistics and a readiness report."""
    from evals.config import ConfigError
    from evals.gate import ModelSpec, evaluate_gate, evaluate_pairwise_gate, gate_config_from_file

    config = config_or_exit()
    try:
        specs = (ModelSpec.parse(baseline), ModelSpec.parse(candidate))
        settings = gate_config_from_file(config.gate, gate_config) if gate_config else config.gate
        if judge is not None:
            decision = evaluate_pairwise_gate(
                config,
                suite,
                *specs,
                judge,
                gate_config=settings,
                report_path=report,
                run_missing=run_missing,
            )
        else:
            decision = evaluate_gate(
                config,
                suite,
                *specs,
                gate_config=settings,
                run_missing=run_missing,
                report_path=report,
            )
    except (ValueError, ConfigError) as exc:
        raise fail(str(exc)) from None
    for criterion in decision.criteria:
        style = _STATUS_STYLE[criterion.status]
        console.print(
            f"  [{style}]{criterion.status:>12}[/] {criterion.name}: {criterion.summary}",
            highlight=False,
        )
    console.print(
        f"[{_STYLE[decision.decision]}]{decision.decision}[/] "
        f"{decision.candidate} vs {decision.baseline} on {decision.suite} "
        f"(exit {decision.exit_code})",
        highlight=False,
    )
    console.print(f"report: {decision.report_path}", highlight=False, soft_wrap=True)
    raise typer.Exit(decision.exit_code)
