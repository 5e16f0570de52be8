"""`evalhouse import FILE --mapping MAP.yaml`: results exported by other tools into the run log."""

from __future__ import annotations

from pathlib import Path

import typer

from evals.cli._common import config_or_exit, console, exit_on_line_issues, fail


def import_file(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSONL, CSV or JSON export."
    ),
    mapping: Path = typer.Option(
        ...,
        "--mapping",
        "-m",
        exists=True,
        dir_okay=False,
        help="Mapping YAML (docs/import-mapping.md).",
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Supersede the rows earlier imports of this file stored (kept, left out of the "
        "marts) and store the file anew, e.g. after correcting the mapping.",
    ),
    allow_missing: list[str] = typer.Option(
        [],
        "--allow-missing",
        metavar="FIELD",
        help="A mapped column whose source path no record has: a warning, not an error "
        "(repeatable).",
    ),
) -> None:
    """Import a results file; unmappable lines are reported (exit 1), the rest are stored.

    Re-importing the same file adds nothing; --replace corrects an earlier import.
    """
    from evals import warehouse
    from evals.importers import MappingError, import_file, load_mapping

    config = config_or_exit()
    try:
        spec = load_mapping(mapping)
        with warehouse.connect(autocommit=True) as conn:
            report = import_file(
                conn, file, spec, config, replace=replace, allow_missing=allow_missing
            )
    except MappingError as exc:
        raise fail(str(exc)) from None
    for name in report.missing_allowed:
        console.print(
            f"[yellow]warning:[/] {name}: its source path matches no record (allowed)",
            highlight=False,
        )
    if replace:
        console.print(f"{report.superseded} rows of earlier imports superseded (kept in raw)")
    console.print(
        f"{file.name}: {report.read} records read, {report.imported} rows imported, "
        f"{report.already_present} already present, {report.parse_errors} parse errors "
        f"(raw verdict kept), {report.reviews_stored} human reviews stored"
    )
    exit_on_line_issues(file.name, report.issues, "records could not be mapped")
