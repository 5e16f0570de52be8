"""The web app's own connection pool, as the least-privilege role, and concurrent reads.

The app never connects as the warehouse owner. `web.database_url_env` may name a complete URL for
a login role an administrator created (a managed Postgres); on the embedded server the app uses
the web role's generated password; otherwise the warehouse URL is reused with its user swapped for
`web.role`, the role migration 0003 creates with exactly the grants the pages need. A page's independent aggregates run at once on pooled connections (`gather`), so the
page costs one round trip of the slowest query rather than the sum of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg.rows import dict_row, tuple_row
from psycopg.types.numeric import FloatLoader
from psycopg_pool import ConnectionPool

from evals import warehouse
from evals.config import Config

Query = tuple[str, Sequence[Any] | Mapping[str, Any]]
STATEMENT_TIMEOUT_MS = 15_000
CONNECT_TIMEOUT_S = 3  # libpq's, per attempt
WAIT_TIMEOUT_S = 5.0  # for a pooled connection; then the page is a 503, not a 30 s hang


def web_conninfo(config: Config) -> str:
    """The URL the app connects with: an explicit one from the env; on the embedded server, the
    web role's URL with its password (evals.warehouse.access); else the warehouse as web.role."""
    if explicit := os.environ.get(config.web.database_url_env):
        return warehouse.libpq_url(explicit)
    if warehouse.uses_embedded():
        server = warehouse.embedded_server()
        server.ensure_running()
        return server.url(role=config.web.role)
    params = pg_conninfo.conninfo_to_dict(warehouse.libpq_url(warehouse.database_url()))
    params["user"] = config.web.role
    params.pop("password", None)
    return pg_conninfo.make_conninfo(**params)


def _configure(conn: psycopg.Connection) -> None:
    # Aggregates (sum of counts) arrive as numeric; pages do arithmetic and formatting on floats.
    conn.adapters.register_loader("numeric", FloatLoader)
    conn.execute(f"set statement_timeout = {STATEMENT_TIMEOUT_MS}")
    conn.execute("set application_name = 'evalhouse-web'")
    conn.execute("set timezone = 'UTC'")  # pages label every time UTC, whatever the server says


class WebDatabase:
    """A psycopg connection pool with dict rows and a thread pool for concurrent page queries.

    Each connection is checked as it leaves the pool, so after a warehouse restart the first
    request gets a fresh connection rather than a dead one; while the warehouse is down a request
    waits at most WAIT_TIMEOUT_S and fails with PoolTimeout, which the app answers with a 503.
    """

    def __init__(self, conninfo: str, *, min_size: int = 2, max_size: int = 12) -> None:
        self._pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            configure=_configure,
            check=ConnectionPool.check_connection,
            timeout=WAIT_TIMEOUT_S,
            open=False,
            name="evalhouse-web",
        )
        self._executor = ThreadPoolExecutor(max_workers=max_size, thread_name_prefix="web-query")

    def open(self, timeout_s: float = 10.0) -> None:
        self._pool.open(wait=True, timeout=timeout_s)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pool.close()

    @contextmanager
    def connection(self, *, tuple_rows: bool = False) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit; use `conn.transaction()` for multi-statement writes).

        `tuple_rows` lends it to library code (evals.replay) that indexes rows by position.
        """
        with self._pool.connection() as conn:
            if not tuple_rows:
                yield conn
                return
            conn.row_factory = tuple_row
            try:
                yield conn
            finally:
                conn.row_factory = dict_row

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> dict | None:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def gather(self, queries: Mapping[str, Query]) -> dict[str, list[dict]]:
        """Run named queries concurrently, each on its own pooled connection."""
        futures = {
            name: self._executor.submit(self.rows, sql, params)
            for name, (sql, params) in queries.items()
        }
        return {name: future.result() for name, future in futures.items()}
