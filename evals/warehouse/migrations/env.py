"""Alembic environment: runs migrations on the connection evalhouse hands it.

An advisory lock serialises concurrent `migrate` calls (CLI, Dagster, tests) on one warehouse.
"""

from alembic import context
from sqlalchemy import text

_MIGRATION_LOCK = 7_351_001


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    connection.execute(text("select pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
    try:
        context.configure(connection=connection, version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("select pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
        connection.commit()


run_migrations_online()
