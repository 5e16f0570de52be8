"""Imports that can be corrected: a run-log row can be superseded, never deleted.

Revision ID: 0010
Revises: 0009

`evalhouse import --replace` marks the rows an earlier import of the same file produced as
superseded (`superseded_at`) and stores the file anew. Staging leaves superseded rows out, so
the marts count the corrected import only, while raw keeps both. A superseded row gives up its
idempotency key: the unique index of settled keys covers live rows only, so the corrected row
of the same source record can settle under the same key. Two partial indexes serve the
replacement's lookup (import rows by file, by key) and dbt's removal of superseded rows from
the incremental call table; both cover a small share of the log.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SETTLED = "status in ('ok', 'parse_error')"


def upgrade() -> None:
    # `if not exists`: a downgrade keeps the column (see there), so an upgrade may find it.
    op.execute("alter table raw.eval_runs add column if not exists superseded_at timestamptz")
    op.execute("drop index raw.eval_runs_settled_key_idx")
    op.execute(
        "create unique index eval_runs_settled_key_idx on raw.eval_runs (idempotency_key)"
        f" where {_SETTLED} and superseded_at is null"
    )
    op.execute(
        "create index eval_runs_import_file_idx on raw.eval_runs"
        " ((attributes ->> 'imported_from')) where source = 'import'"
    )
    op.execute(
        "create index eval_runs_import_key_idx on raw.eval_runs (idempotency_key)"
        " where source = 'import'"
    )
    op.execute(
        "create index eval_runs_superseded_idx on raw.eval_runs (run_id)"
        " where superseded_at is not null"
    )


def downgrade() -> None:
    """Keeps the column: dbt's staging views read it, and dropping it would drop them. Fails
    while a replacement shares a settled key with the row it superseded: resolve those by hand
    first (nothing here deletes a row)."""
    op.execute("drop index raw.eval_runs_superseded_idx")
    op.execute("drop index raw.eval_runs_import_key_idx")
    op.execute("drop index raw.eval_runs_import_file_idx")
    op.execute("drop index raw.eval_runs_settled_key_idx")
    op.execute(
        "create unique index eval_runs_settled_key_idx on raw.eval_runs (idempotency_key)"
        f" where {_SETTLED}"
    )
