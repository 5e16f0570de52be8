"""`evalhouse forget` and `evalhouse retention apply`: learners' data let go, and audited."""

from __future__ import annotations

import typer

from evals.cli._common import config_or_exit, console, fail

retention_app = typer.Typer(
    help="Keep each run-log source for the days evalhouse.yaml's `retention:` gives it.",
    no_args_is_help=True,
)

_BY_HELP = "Who asks (recorded in the audit); default: the OS user."


def forget(
    subject: str | None = typer.Option(None, "--subject", help="The subject (learner) id."),
    by: str | None = typer.Option(None, "--by", help=_BY_HELP),
    rebuild: bool = typer.Option(
        True,
        "--rebuild/--no-rebuild",
        help="Rebuild the marts now (--no-rebuild: leave it pending, e.g. between subjects).",
    ),
) -> None:
    """Erase SUBJECT from the run log, reviews, alerts, spool and review exports; rebuild marts.

    Without --subject, only rebuilds the marts for erasures still pending.
    """
    from evals import warehouse
    from evals.lifecycle import requester
    from evals.lifecycle.forget import ForgetError, forget_subject, rebuild_marts

    config = config_or_exit()
    if subject is None and not rebuild:
        raise fail("nothing to do: give --subject, or let it --rebuild")
    with warehouse.connect(autocommit=True) as conn:
        if subject is not None:
            try:
                done = forget_subject(conn, config, subject, requested_by=by or requester())
            except ValueError as exc:
                raise fail(str(exc)) from None
            rows = ", ".join(f"{table} {count}" for table, count in done.rows.items())
            files = ", ".join(f"{name} {count}" for name, count in done.files.items())
            console.print(f"erased (erasure {done.erasure_id}): {rows}; files: {files}")
            if not done.complete:
                console.print(
                    f"[yellow]{done.files['busy_spool_segments']} spool segments are being "
                    "written by a running app and were not searched: run forget again once "
                    "it has flushed[/]"
                )
        if rebuild:
            try:
                rebuilt = rebuild_marts(conn, config)
            except ForgetError as exc:
                raise fail(str(exc), code=1) from None
            console.print(
                f"marts rebuilt for {rebuilt} erasures" if rebuilt else "marts: nothing to rebuild"
            )
        else:
            console.print("marts not rebuilt: run `evalhouse forget` (it rebuilds what is pending)")
    if subject is not None and not done.complete:
        raise typer.Exit(1)


@retention_app.command("apply")
def apply(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
    by: str | None = typer.Option(None, "--by", help=_BY_HELP),
) -> None:
    """Delete each source's runs older than its retention (with their descendants, reviews,
    queue entries and alert examples); print per source how many rows went."""
    from evals import warehouse
    from evals.lifecycle import requester
    from evals.lifecycle.retention import apply_retention

    config = config_or_exit()
    limited = {source: days for source, days in config.retention.items() if days != "forever"}
    if not limited:
        console.print("no source has a retention limit (`retention:` in evalhouse.yaml)")
        return
    with warehouse.connect(autocommit=True) as conn:
        cuts = apply_retention(conn, config, requested_by=by or requester(), dry_run=dry_run)
    verb = "would go" if dry_run else "went"
    for cut in cuts:
        rows = ", ".join(f"{table} {count}" for table, count in cut.rows.items())
        console.print(
            f"{cut.source} (kept {cut.days} days, started before {cut.cutoff:%Y-%m-%d %H:%M} UTC):"
            f" {verb}: {rows}",
            highlight=False,
        )


def erasures(
    limit: int = typer.Option(20, "--limit", min=1, help="Newest N erasures."),
) -> None:
    """The erasure audit (raw.data_erasures): who erased how many rows when; marts pending."""
    from evals import warehouse
    from evals.lifecycle.audit import erasures as audit_rows

    with warehouse.connect() as conn:
        rows = audit_rows(conn, limit)
    if not rows:
        console.print("no erasures recorded")
    for row in rows:
        counts = ", ".join(f"{table} {n}" for table, n in sorted(row["rows_erased"].items()))
        scope = f" {row['scope']['source']}" if row["scope"].get("source") else ""
        marts = (
            ""
            if row["action"] != "forget"
            else f"; marts rebuilt {row['marts_rebuilt_at']:%Y-%m-%d %H:%M}"
            if row["marts_rebuilt_at"]
            else "; marts rebuild PENDING"
        )
        console.print(
            f"{row['erased_at']:%Y-%m-%d %H:%M} {row['action']}{scope} by {row['requested_by']}:"
            f" {counts}{marts}",
            highlight=False,
            markup=False,
        )
