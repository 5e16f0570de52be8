"""`evalhouse db up|down|status|url|migrate`: the warehouse's lifecycle and schema."""

from __future__ import annotations

import typer

from evals import warehouse
from evals.cli._common import console, fail

app = typer.Typer(help="Start, stop, inspect and migrate the warehouse.", no_args_is_help=True)

_TCP_DEFAULT = 5433


def _require_embedded(action: str) -> None:
    if not warehouse.uses_embedded():
        raise fail(f"`db {action}` manages the embedded Postgres; {warehouse.URL_ENV} is set")


@app.command("up")
def up(
    tcp: int | None = typer.Option(
        None, "--tcp", help=f"Also listen on 127.0.0.1:PORT (JDBC BI tools); e.g. {_TCP_DEFAULT}."
    ),
    migrate: bool = typer.Option(True, help="Apply migrations after start."),
) -> None:
    """Start the embedded Postgres (detached; it runs until `db down`)."""
    _require_embedded("up")
    from evals.warehouse.embedded import EmbeddedPostgresError

    try:
        status = warehouse.embedded_server().ensure_running(tcp_port=tcp)
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    console.print(f"embedded Postgres {status.describe()}")
    if migrate:
        console.print(f"schema at revision {warehouse.migrate()}")


@app.command("down")
def down() -> None:
    """Stop the embedded Postgres."""
    _require_embedded("down")
    stopped = warehouse.embedded_server().stop()
    console.print("stopped" if stopped else "was not running")


@app.command("status")
def status() -> None:
    """Say whether the warehouse runs, where, and at which schema revision."""
    if warehouse.uses_embedded():
        server = warehouse.embedded_server()
        state = server.status()
        console.print(f"embedded Postgres in {server.pgdata}: {state.describe()}")
        if not state.running:
            raise typer.Exit(1)
    else:
        console.print(f"external Postgres from ${warehouse.URL_ENV}")
    try:
        revision = warehouse.current_revision()
    except Exception as exc:  # report, don't trace: status is what users run when things break
        raise fail(f"cannot read the schema revision: {type(exc).__name__}", code=1) from None
    head = warehouse.head_revision()
    note = "up to date" if revision == head else f"head is {head}: run `evalhouse db migrate`"
    console.print(f"schema revision {revision or 'none'} ({note})")


@app.command("url")
def url(
    tcp: bool = typer.Option(False, "--tcp", help="Print the TCP URL (start with `db up --tcp`)."),
    role: str = typer.Option(
        "owner", "--role", help="owner, web (the app's role) or bi (read-only, the marts)."
    ),
    sqlalchemy: bool = typer.Option(False, "--sqlalchemy", help="postgresql+psycopg:// form."),
) -> None:
    """Print the warehouse URL (psql, psycopg, dbt and SQLAlchemy accept it); with a role's
    password where the embedded server asks for one (every role over TCP, non-owners always)."""
    from evals.warehouse.access import ROLES
    from evals.warehouse.embedded import EmbeddedPostgresError

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}")
    try:
        if warehouse.uses_embedded():
            server = warehouse.embedded_server()
            server.ensure_running()
            value = server.url(tcp=tcp, role=ROLES[role])
        elif role == "owner":
            value = warehouse.database_url()
        else:
            raise fail(
                f"the passwords of an external Postgres are its administrator's: build the URL of"
                f" {ROLES[role]} yourself (docs/bi.md, docs/web.md)"
            )
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    typer.echo(warehouse.sqlalchemy_url(value) if sqlalchemy else value)


@app.command("password")
def password(
    role: str = typer.Option(..., "--role", help="owner, web or bi."),
    stdin: bool = typer.Option(
        False, "--stdin", help="Read the new password from stdin (else a random one is made)."
    ),
) -> None:
    """Set a role's password on the embedded server and in EVALHOUSE_HOME/passwords.json
    (`db url --role` prints it); a running `evalhouse serve` needs a restart after `--role web`."""
    import sys

    from evals.warehouse.access import ROLES, generate
    from evals.warehouse.embedded import EmbeddedPostgresError

    _require_embedded("password")
    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}")
    new = sys.stdin.read().rstrip("\n") if stdin else generate()
    if len(new) < 12:
        raise fail("the password must be at least 12 characters")
    try:
        warehouse.embedded_server().set_password(ROLES[role], new)
    except EmbeddedPostgresError as exc:
        raise fail(str(exc)) from None
    console.print(f"{ROLES[role]}: new password set; `evalhouse db url --role {role}` prints it")


@app.command("migrate")
def migrate(
    revision: str = typer.Argument("head", help="Target revision (head, base, or an id)."),
) -> None:
    """Apply schema migrations (idempotent; upgrades keep every row)."""
    before = warehouse.current_revision()
    after = warehouse.migrate(revision)
    console.print(f"schema {before or 'empty'} -> {after or 'base'}")
