"""`evalhouse api token create|list|revoke`: the JSON API's Bearer tokens (docs/api.md)."""

from __future__ import annotations

import typer

from evals.cli._common import console, fail

app = typer.Typer(help="The JSON API: its tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _connection():
    from evals import warehouse

    if warehouse.uses_embedded():
        warehouse.migrate()
    return warehouse.connect()


@token_app.command("create")
def create(name: str = typer.Argument(..., help="Who or what uses it, e.g. 'ci-deploy'.")) -> None:
    """Create a token and print it once: only its hash is stored."""
    from evals.api_tokens import create_token

    with _connection() as conn:
        try:
            token, value = create_token(conn, name)
        except ValueError as exc:
            raise fail(str(exc)) from None
        conn.commit()
    console.print(f"token {token.token_id} for {token.name!r} (shown once, store it now):")
    console.print(value, highlight=False, markup=False, soft_wrap=True)


@token_app.command("list")
def list_tokens() -> None:
    """Every token: id, name, prefix, created, revoked (never the token)."""
    from evals.api_tokens import list_tokens as rows

    with _connection() as conn:
        for token_id, name, prefix, created_at, revoked_at in rows(conn):
            state = f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "live"
            console.print(
                f"{token_id:>5}  {prefix}…  {created_at:%Y-%m-%d %H:%M}  {state:<24} {name}",
                highlight=False,
                markup=False,
            )


@token_app.command("revoke")
def revoke(token_id: int = typer.Argument(..., help="The id `api token list` shows.")) -> None:
    """Revoke a token; the API refuses it from the next request on."""
    from evals.api_tokens import revoke_token

    with _connection() as conn:
        revoked = revoke_token(conn, token_id)
        conn.commit()
    if not revoked:
        raise fail(f"no live token {token_id}")
    console.print(f"token {token_id} revoked")
