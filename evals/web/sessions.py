"""Server-side sessions: a signed cookie is honoured only while its row in raw.web_sessions lives.

A signed cookie alone cannot be revoked: a copy taken before logout (a shared machine, a proxy
log, a stolen backup) would work for the rest of its 12 hours. So login stores the session,
every request that comes with a cookie looks it up, and logout deletes it. The table keeps the
SHA-256 of the session id, never the id, so reading it yields no cookie.
"""

from __future__ import annotations

import hashlib
import secrets

from evals.web.db import WebDatabase


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(db: WebDatabase, user_name: str, ttl_s: int) -> str:
    """A new session id for `user_name`, live for `ttl_s`; expired sessions are pruned here."""
    session_id = secrets.token_urlsafe(24)
    with db.connection() as conn, conn.transaction():
        conn.execute("delete from raw.web_sessions where expires_at < now()")
        conn.execute(
            "insert into raw.web_sessions (session_hash, user_name, expires_at)"
            " values (%s, %s, now() + make_interval(secs => %s))",
            (_hash(session_id), user_name, ttl_s),
        )
    return session_id


def is_live(db: WebDatabase, session_id: str) -> bool:
    row = db.one(
        "select 1 as live from raw.web_sessions where session_hash = %s and expires_at > now()",
        (_hash(session_id),),
    )
    return row is not None


def end(db: WebDatabase, session_id: str) -> None:
    """Revoke the session: its cookie, and every copy of it, stops working now."""
    with db.connection() as conn:
        conn.execute("delete from raw.web_sessions where session_hash = %s", (_hash(session_id),))
