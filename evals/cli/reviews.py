"""`evalhouse reviews queue|import`: work for human reviewers out, their labels in."""

from __future__ import annotations

from pathlib import Path

import typer

from evals.cli._common import config_or_exit, console, exit_on_line_issues, fail

app = typer.Typer(
    help="Human reviews: export a stratified review queue, import labels.", no_args_is_help=True
)


@app.command("queue")
def queue(
    stage: list[str] | None = typer.Option(None, "--stage", help="Only these stages (repeatable)."),
    n: int = typer.Option(20, "--n", min=1, help="Runs to add per stage."),
    out: Path = typer.Option(Path("review_queue.csv"), "--out", help="CSV or JSONL (by suffix)."),
    source: list[str] | None = typer.Option(
        None, "--source", help="Run sources (default production)."
    ),
) -> None:
    """Queue up to N unreviewed runs per stage and export every pending queue entry to OUT."""
    from evals import warehouse
    from evals.reviews import export_queue, queue_unreviewed

    config = config_or_exit()
    if out.suffix.lower() not in (".csv", ".jsonl"):
        raise fail(f"--out must end in .csv or .jsonl, not {out.name}")
    with warehouse.connect(autocommit=True) as conn:
        added = queue_unreviewed(
            conn, n, stages=stage, sources=source or ("production",), seed=config.sampling.seed
        )
        exported = export_queue(conn, out, stages=stage)
    console.print(f"queued {added} new runs; exported {exported} pending runs to {out}")
    console.print(
        "fill in reviewer, verdict (and optionally score, issue_tags, notes), then "
        f"`evalhouse reviews import {out}`"
    )


@app.command("import")
def import_labels(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSONL of labels."),
    reviewer: str | None = typer.Option(
        None, "--reviewer", help="Reviewer for rows that name none."
    ),
) -> None:
    """Import labels; unknown run ids and values outside the suite's vocabulary are reported by line."""
    from evals import warehouse
    from evals.reviews import import_reviews

    config = config_or_exit()
    with warehouse.connect(autocommit=True) as conn:
        result = import_reviews(conn, config, file, reviewer=reviewer)
    console.print(
        f"{file.name}: {result.read} rows read, {result.stored} labels stored or updated, "
        f"{result.unlabelled} without a verdict (skipped)"
    )
    exit_on_line_issues(file.name, result.issues, "rows rejected")
