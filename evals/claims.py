"""Claims on units of work, so concurrent runs of the same work share it instead of paying twice.

A claim is a Postgres session advisory lock on a unit's idempotency key, taken on a connection
of its own that lives as long as the run. Why locks held by a session and not a table of leases:
the lock's life *is* the claimant's life. A `kill -9`, a crash or a closed laptop ends the
session and Postgres drops its locks at once — no heartbeat to keep, no expiry to tune against
the slowest call, no clock, no rows to clean up, nothing a paused process can hold past its
lease while another pays for the same call. What a data engineer must know instead:

- the claim connection must reach Postgres directly or through a *session*-pooling proxy
  (pgbouncer in transaction mode would hand the lock's session to someone else);
- a claimant whose host vanishes without closing its socket is noticed by TCP keepalives, which
  this connection sets (`KEEPALIVE`: about a minute) instead of the kernel's two hours;
- locks live in Postgres's shared lock table (`max_locks_per_transaction` x connections), so a
  run claims a few units ahead of its workers and releases each once its rows are committed,
  never the whole batch at once;
- a key is hashed to the lock's 64 bits: two units colliding would only share one lock;
- a live but stuck claimant (SIGSTOP, a hung process) keeps its claims, and a run waiting for
  them waits with it — never pays twice; ending the stuck process frees them.

A claimed unit must be checked again *after* the claim (a new statement): its previous holder
released it only after committing its rows, so that check sees whatever it settled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

KEEPALIVE = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}
"""Server-side keepalives of the claim session: a vanished claimant's locks go in ~60 s."""
SET_KEEPALIVE = "select " + ", ".join(f"set_config('{name}', %s, false)" for name in KEEPALIVE)
"""Sets KEEPALIVE on a session (parameters: KEEPALIVE_VALUES); evals.warehouse_limits too."""
KEEPALIVE_VALUES = [str(value) for value in KEEPALIVE.values()]

POLL_S = 0.5
"""How often a run that has nothing left but units another run holds looks at them again."""


def lock_id(key: str) -> int:
    """The advisory lock id (a signed 64-bit int) of an idempotency key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), signed=True)


class Claims:
    """The claims of one run, held on `conn` (autocommit), which also re-checks claimed work."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        conn.execute(SET_KEEPALIVE, KEEPALIVE_VALUES)

    @classmethod
    def open(cls) -> Claims:
        """Claims on a new warehouse connection (its client side keeps alive too)."""
        from evals import warehouse

        return cls(warehouse.connect(autocommit=True, keepalives=1, keepalives_idle=30))

    def claim(self, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` this run now holds; the others are held by another run."""
        ids: dict[int, list[str]] = {}
        for key in keys:
            ids.setdefault(lock_id(key), []).append(key)
        if not ids:
            return set()
        rows = self.conn.execute(
            "select id from unnest(%s::bigint[]) as id where pg_try_advisory_lock(id)",
            (list(ids),),
        ).fetchall()
        return {key for (held,) in rows for key in ids[held]}

    def release(self, keys: Sequence[str]) -> None:
        """Give up claims, once the work's rows are committed (or it needs no call)."""
        if keys:
            self.conn.execute(
                "select pg_advisory_unlock(id) from unnest(%s::bigint[]) as id",
                (list({lock_id(key) for key in keys}),),
            )

    def close(self) -> None:
        """End the session: every claim still held goes with it."""
        self.conn.close()
