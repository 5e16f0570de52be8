"""The warehouse's budget of calls: the models' rpm pacers.

Revision ID: 0021
Revises: 0020

`raw.call_pacing` holds one row per model: the earliest start of its next call attempt, on the
warehouse's clock, booked by `evals.warehouse_limits` for every process that shares the budget
(`shared_limits: warehouse`). Unlogged: a pacer need not survive a crash (after one, the next
call simply starts at once), and no WAL is written per attempt. The concurrency slots need no
table: they are session advisory locks.
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create unlogged table raw.call_pacing (
            model   text primary key,
            next_at timestamptz not null
        )
        """
    )


def downgrade() -> None:
    op.execute("drop table raw.call_pacing")
