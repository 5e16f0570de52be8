"""`evalhouse capture flush|status`: the production-capture spool, seen and emptied by hand.

Apps replay their spool themselves when the warehouse returns; these commands are for the cases
they cannot: the app is gone for good, or an operator wants to see what is waiting.
"""

from __future__ import annotations

import typer

from evals.cli._common import config_or_exit, console, fail

app = typer.Typer(
    help="Production capture: the local spool of rows waiting for the warehouse.",
    no_args_is_help=True,
)


@app.command("flush")
def flush() -> None:
    """Write every spooled row into the warehouse and delete the emptied segments.

    Lines that are no record and rows the warehouse refuses are set aside in rejected-*.jsonl
    (listed here); they never block the rest of the spool.
    """
    import psycopg

    from evals import warehouse
    from evals.capture import spool_dir
    from evals.capture.spool import Spool
    from evals.capture.writer import write_or_set_aside
    from evals.reviews import write_reviews_of_present_runs

    spool = Spool(spool_dir(config_or_exit()))
    refused = 0

    def write(chunk) -> int:
        nonlocal refused
        inserted, rejected = write_or_set_aside(conn, chunk, spool)
        refused += rejected
        return inserted

    try:
        with warehouse.connect(autocommit=True) as conn:
            result = spool.replay(write)
            reviews, waiting = spool.replay_reviews(
                lambda held: write_reviews_of_present_runs(conn, held)
            )
    except psycopg.Error as exc:
        raise fail(
            f"the warehouse refused the spool ({type(exc).__name__}); nothing was deleted"
        ) from None
    console.print(
        f"replayed {result.rows} rows from {result.segments} segments in {spool.directory}"
        f" ({result.inserted} new, {result.rows - result.inserted - refused} already present)"
    )
    if result.skipped_busy:
        console.print(
            f"{result.skipped_busy} segments are being written by a running app: left alone"
        )
    if reviews or waiting:
        console.print(
            f"human reviews held for spooled runs: {reviews} stored, {waiting} still waiting"
        )
    for where in result.set_aside:
        console.print(f"set aside, not a record: {where}", style="yellow", markup=False)
    if result.rejected or refused:
        console.print(
            f"[yellow]{result.rejected} unreadable lines and {refused} rows the warehouse "
            f"refused set aside in {spool.directory}/rejected-*.jsonl[/]"
        )


@app.command("status")
def status() -> None:
    """Show what waits in the spool and what was set aside."""
    from evals.capture import spool_dir
    from evals.capture.spool import Spool

    spool = Spool(spool_dir(config_or_exit()))
    segments = spool.segments()
    console.print(
        f"spool {spool.directory}: {len(segments)} segments, {spool.pending_rows()} rows waiting"
    )
    held = sum(path.read_bytes().count(b"\n") for path in spool.review_files())
    if held:
        console.print(f"{held} human reviews wait for their runs to be replayed")
    for path in spool.rejected_files():
        count = path.read_bytes().count(b"\n")
        console.print(
            f"[yellow]{path.name}: {count} rows set aside: refused by the warehouse or no "
            "record (kept, never replayed)[/]"
        )
