"""One index on the run log's batch id, not two.

Revision ID: 0022
Revises: 0021

Migration 0008 added a partial index on `batch_id` over graded golden / ci calls so that
int_golden_outcomes could scan those rows alone. Since then the marts read the golden outcomes
batch by batch (`batch_id in (...)`, inlined as literals), which the plain `eval_runs_batch_idx`
answers as well (a batch's rows are one source), and every golden row paid for both indexes on
the write path (docs/benchmarks.md, "Run-log writes").
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("drop index raw.eval_runs_golden_graded_idx")


def downgrade() -> None:
    op.execute(
        "create index eval_runs_golden_graded_idx on raw.eval_runs (batch_id)"
        " where source in ('golden', 'ci') and role in ('candidate', 'grader')"
    )
