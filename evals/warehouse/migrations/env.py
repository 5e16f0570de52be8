"""Alembic environment: runs migrations on the connection evalhouse hands it.

A transaction-level advisory lock serialises concurrent `migrate` calls (CLI, Dagster, tests)
on one warehouse. It is released by the commit itself: a session lock released before the
commit would let the next caller start while this one's DDL is still invisible to it.
"""

from alembic import context
from sqlalchemy import text

_MIGRATION_LOCK = 7_351_001


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.configure(connection=connection, version_table_schema="public")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


run_migrations_online()
