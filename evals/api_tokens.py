"""API tokens (raw.api_tokens): created by the CLI, shown once, stored only as a hash.

A token is `eh_` + 43 characters of `secrets.token_urlsafe(32)` (256 random bits), so a plain
sha256 is as strong as a slow password hash would be, and a lookup is one indexed equality. The
first characters (`prefix`) are kept to tell tokens apart in `evalhouse api token list`.
This module is the table's one writer.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

TOKEN_PREFIX = "eh_"
_SHOWN_PREFIX_CHARS = 10


@dataclass(frozen=True)
class ApiToken:
    """A stored token (never its value): who it was made for, and whether it still works."""

    token_id: int
    name: str
    prefix: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: psycopg.Connection, name: str) -> tuple[ApiToken, str]:
    """A new token for `name`: the stored record and the plain token (shown once, never kept)."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("a token needs a name (who or what uses it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[:_SHOWN_PREFIX_CHARS]
    row = conn.execute(
        "insert into raw.api_tokens (name, token_hash, prefix) values (%s, %s, %s)"
        " returning token_id",
        (name, token_hash(token), prefix),
    ).fetchone()
    return ApiToken(row[0], name, prefix), token


def revoke_token(conn: psycopg.Connection, token_id: int) -> bool:
    """Revoke a token (it stops working at once); False when there is no such live token."""
    cur = conn.execute(
        "update raw.api_tokens set revoked_at = now() where token_id = %s and revoked_at is null",
        (token_id,),
    )
    return cur.rowcount == 1


def list_tokens(conn: psycopg.Connection) -> list[tuple]:
    """(token_id, name, prefix, created_at, revoked_at), oldest first."""
    return conn.execute(
        "select token_id, name, prefix, created_at, revoked_at from raw.api_tokens"
        " order by token_id"
    ).fetchall()


LOOKUP_SQL = (
    "select token_id, name, prefix from raw.api_tokens where token_hash = %s and revoked_at is null"
)
"""The live token with a given hash: what the API authenticates with."""
