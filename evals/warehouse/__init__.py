"""The warehouse: which Postgres, how to connect, and its schema version.

`EVALHOUSE_DATABASE_URL` selects any Postgres. Unset, the embedded server under
`EVALHOUSE_HOME` (default `./.evalhouse`) is used and started on first need.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from evals.warehouse.embedded import EmbeddedPostgres

URL_ENV = "EVALHOUSE_DATABASE_URL"
HOME_ENV = "EVALHOUSE_HOME"
_MIGRATIONS = Path(__file__).parent / "migrations"


def evalhouse_home() -> Path:
    return Path(os.environ.get(HOME_ENV, ".evalhouse")).expanduser().resolve()


def embedded_server() -> EmbeddedPostgres:
    from evals.warehouse.embedded import EmbeddedPostgres

    return EmbeddedPostgres(evalhouse_home())


def uses_embedded() -> bool:
    return not os.environ.get(URL_ENV)


def database_url() -> str:
    """The libpq URL of the warehouse, starting the embedded server when it is the one in use."""
    if url := os.environ.get(URL_ENV):
        return url
    server = embedded_server()
    server.ensure_running()
    return server.url()


def libpq_url(url: str) -> str:
    """Strip a SQLAlchemy driver suffix (`postgresql+psycopg://`) so psycopg and psql accept it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    return f"postgresql+{driver}://{libpq_url(url).partition('://')[2]}"


@cache
def _engine_for(url: str) -> sa.Engine:
    import sqlalchemy as sa

    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10)


def engine() -> sa.Engine:
    """A pooled SQLAlchemy engine on the warehouse (one per URL per process)."""
    return _engine_for(database_url())


def connect(**kwargs):
    """A psycopg 3 connection on the warehouse (for COPY and pipelined writes)."""
    import psycopg

    return psycopg.connect(libpq_url(database_url()), **kwargs)


def conninfo_of(conn) -> str:
    """The libpq conninfo of the database `conn` is on, as its user (password included): to
    open more connections beside a caller's, whose database need not be the warehouse in use."""
    from psycopg.conninfo import make_conninfo

    password = conn.info.password
    return make_conninfo(conn.info.dsn, **({"password": password} if password else {}))


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(revision: str = "head") -> str | None:
    """Upgrade (or downgrade, given an older revision) the warehouse schema; returns the new head."""
    from alembic import command

    with engine().connect() as connection:
        config = _alembic_config(connection)
        current = current_revision(connection)
        if current is not None and revision != "head" and _is_older(config, revision, current):
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
        if revision == "head":
            # A maintenance step at every start: the run log's next months exist before a
            # writer that may not create them (the web role) needs them.
            from evals import runlog

            with connect(autocommit=True) as conn:
                runlog.create_partitions_ahead(conn)
        return current_revision(connection)


def ensure_migrated() -> None:
    """`migrate()` unless the warehouse is at head already, which one query tells, without
    Alembic: importing it and SQLAlchemy and loading every migration script cost ~0.35 s of
    CPU before a command's real work (`evalhouse run`'s first request waits for it). The run
    log's months ahead are made either way, as `migrate()` does."""
    import psycopg

    from evals import runlog

    with connect(autocommit=True) as conn:
        try:
            row = conn.execute("select version_num from public.alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:  # a new warehouse
            row = None
        if row is not None and row[0] == file_head():
            runlog.create_partitions_ahead(conn)
            return
    migrate()


def file_head() -> str:
    """The head revision read from the migrations' file names (`0019_….py` is revision 0019,
    one linear chain in number order; tests/test_warehouse.py checks it is Alembic's head)."""
    return max(path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("*_*.py"))


def _is_older(config, target: str, current: str) -> bool:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    if target == "base":
        return True
    return (
        any(rev.revision == target for rev in script.iterate_revisions(current, "base"))
        and target != current
    )


def current_revision(connection=None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    if connection is None:
        with engine().connect() as conn:
            return current_revision(conn)
    return MigrationContext.configure(
        connection, opts={"version_table_schema": "public"}
    ).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
