"""Progress bar and closing summary of a run, on the terminal (stderr for the live bar).

Rich is imported inside the functions: `evalhouse --help` and library users that never show a
run should not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals.runner.summary import RunSummary


def progress_bar(enabled: bool):
    """The live bar: calls done of those remaining, rate, eta, errors and cost so far."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} calls/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("errors {task.fields[errors]}"),
        TextColumn("${task.fields[cost]:.4f}"),
        console=Console(stderr=True),
        disable=not enabled,
        refresh_per_second=4,
        transient=False,
    )


def render_summary(summary: RunSummary, console) -> None:
    """The closing summary as rich tables."""
    from rich.table import Table

    head = Table(
        title=f"{summary.suite}@{summary.suite_version} x {summary.model}"
        + (f" (judge {summary.judge})" if summary.judge else ""),
        show_header=False,
    )
    accuracy = summary.accuracy
    p50, p95 = summary.latency_ms(0.5), summary.latency_ms(0.95)
    rows = [
        ("batch", f"{summary.batch_key} (evaluation run /batches/{summary.batch_id})"),
        (
            "calls",
            f"{summary.calls} made, {summary.skipped_calls} already settled, "
            + (
                f"{summary.calls_elsewhere} made by a concurrent run, "
                if summary.calls_elsewhere
                else ""
            )
            + f"{summary.planned_calls} planned",
        ),
        ("by status", ", ".join(f"{s} {n}" for s, n in sorted(summary.statuses.items())) or "-"),
        ("still unsettled", str(summary.unsettled_calls)),
        (
            "accuracy" if summary.kind == "grader" else "pass rate",
            f"{accuracy:.1%} of {summary.scored}" if accuracy is not None else "-",
        ),
        ("latency p50 / p95", f"{p50:.0f} / {p95:.0f} ms" if p50 is not None else "-"),
        ("tokens in / out", f"{summary.input_tokens:,} / {summary.output_tokens:,}"),
        ("cost", f"${summary.cost_usd:.4f}"),
        ("elapsed", f"{summary.elapsed_s:.1f} s"),
    ]
    if summary.processes > 1:
        lost = f", {summary.lost_processes} died (rerun)" if summary.lost_processes else ""
        rows.append(("processes", f"{summary.processes}{lost}"))
    for name, value in rows:
        head.add_row(name, value)
    console.print(head)
    if summary.by_stage:
        stages = Table(title="per stage (whole batch)")
        for column in ("stage", "correct" if summary.kind == "grader" else "passed", "n", "rate"):
            stages.add_column(column, justify="left" if column == "stage" else "right")
        for stage, (correct, n) in summary.by_stage.items():
            stages.add_row(stage, str(correct), str(n), f"{correct / n:.1%}" if n else "-")
        console.print(stages)
