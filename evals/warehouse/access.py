"""Who may connect to the embedded server, and with which password.

initdb's `trust` lets every local connection claim any role: the BI role logged in with any
password and, listening on TCP, any local user was superuser. So evalhouse writes pg_hba.conf
itself before every start:

- the owner (the superuser) on the Unix socket: `trust`, and only because the socket directory is
  private (mode 0700, owned by the server's user): whoever can reach the socket can already read
  the data files, so a password would protect nothing;
- every other role on the socket, and every role over TCP (loopback only): `scram-sha-256`;
- anything else matches no line and is refused.

The passwords of the owner (for TCP), the web role and the BI role are generated once per
EVALHOUSE_HOME and kept in `passwords.json` there (mode 0600). They reach the server as SCRAM
verifiers computed by libpq, so the clear text never appears in a statement or a server log.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

from psycopg import sql

from evals.warehouse.roles import BI_ROLE, WEB_ROLE

OWNER = "postgres"
ROLES = {"owner": OWNER, "web": WEB_ROLE, "bi": BI_ROLE}
"""The roles `evalhouse db url --role` knows, by their short name."""

HBA = f"""\
# Written by evalhouse (evals/warehouse/access.py) before every start: edits are overwritten.
# The owner is trusted on the socket only: its directory is private (mode 0700).
local   all  {OWNER}  trust
local   all  all       scram-sha-256
host    all  all       127.0.0.1/32  scram-sha-256
host    all  all       ::1/128       scram-sha-256
"""
_ACCESS_VERSION = "access-v1"


def generate() -> str:
    """32 random bytes, URL-safe: a password goes into URLs as it is."""
    return secrets.token_urlsafe(32)


class Passwords:
    """The roles' passwords under EVALHOUSE_HOME: generated once, readable by its user only."""

    def __init__(self, home: Path) -> None:
        self.path = home / "passwords.json"

    def load(self) -> dict[str, str]:
        """Role name -> password ({} before the first provisioning)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd) as handle:
            if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
                os.fchmod(handle.fileno(), 0o600)  # tighten a copy restored with loose modes
            return json.load(handle)

    def ensure(self) -> dict[str, str]:
        """Every role's password, generating (and storing) the missing ones; call under the lock."""
        stored = self.load()
        missing = {role: generate() for role in ROLES.values() if role not in stored}
        if missing:
            stored = self._store({**stored, **missing})
        return stored

    def replace(self, role: str, password: str) -> None:
        """Store a new password for `role` (the server learns it at the next provisioning)."""
        self._store({**self.ensure(), role: password})

    def _store(self, passwords: dict[str, str]) -> dict[str, str]:
        temporary = self.path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(passwords, handle, indent=1)
        temporary.replace(self.path)
        return passwords

    def marker(self) -> str:
        """What the provisioning marker holds once these passwords are applied to the server
        (a digest: a regenerated file must be applied again)."""
        digest = hashlib.sha256(json.dumps(self.load(), sort_keys=True).encode()).hexdigest()
        return f"{_ACCESS_VERSION} {digest}"


def apply_passwords(conn, passwords: dict[str, str]) -> None:
    """Create the web and BI roles if absent; give every role LOGIN and its SCRAM verifier."""
    for role, password in passwords.items():
        verifier = conn.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256"
        ).decode()
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        verb = sql.SQL("alter" if exists else "create")
        conn.execute(
            sql.SQL("{} role {} with login password {}").format(
                verb, sql.Identifier(role), sql.Literal(verifier)
            )
        )
