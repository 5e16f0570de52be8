"""A partial index for the golden-outcomes view.

Revision ID: 0008
Revises: 0007

The dbt view int_golden_outcomes reads the run log's graded golden / ci calls directly, and the
incremental marts filter it by evaluated day, a computed column no index serves. This index
holds only those rows (a few per cent of a production-heavy log), so building the marts scans
them instead of the whole 10M-row table.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "create index eval_runs_golden_graded_idx on raw.eval_runs (batch_id)"
        " where source in ('golden', 'ci') and role in ('candidate', 'grader')"
    )


def downgrade() -> None:
    op.execute("drop index raw.eval_runs_golden_graded_idx")
