"""Lighter indexes on the run log's write path.

Revision ID: 0005
Revises: 0004

Every lookup by idempotency key asks for the settled row, which the partial unique index
answers, so the plain index on the key only cost writes (a random-key btree on every insert).
`ingested_at` only grows (it defaults to now()), so a BRIN index serves dbt's incremental
`ingested_at > max(...)` scans at a fraction of a btree's upkeep.
A typical row (rubric, submission, messages, feedback) is 2-3 KB: just past the 2 KB point where
Postgres compresses it with pglz, which cost a third of the write rate. Rows up to 8 KB now stay
inline and uncompressed (~30 % more disk); larger ones are still compressed and toasted.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("drop index raw.eval_runs_idempotency_key_idx")
    op.execute("drop index raw.eval_runs_ingested_at_idx")
    op.execute("create index eval_runs_ingested_at_brin on raw.eval_runs using brin (ingested_at)")
    op.execute("alter table raw.eval_runs set (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.execute("alter table raw.eval_runs reset (toast_tuple_target)")
    op.execute("drop index raw.eval_runs_ingested_at_brin")
    op.execute("create index eval_runs_ingested_at_idx on raw.eval_runs (ingested_at)")
    op.execute("create index eval_runs_idempotency_key_idx on raw.eval_runs (idempotency_key)")
