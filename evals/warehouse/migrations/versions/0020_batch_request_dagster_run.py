"""raw.batch_requests.dagster_run_id: the Dagster run an API-started evaluation ran in; and
raw.eval_batches.kind may be 'replay' (`evalhouse replay-many`).

Revision ID: 0020
Revises: 0019

Set when `evalhouse serve` launches the request's `api_batch` run (evals.batch_launch) and by
that run's op when it claims the request, so the API and the pages link the run. The web
role may update that column only.
"""

from alembic import op

from evals.warehouse.roles import WEB_ROLE, batch_launch_grants_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _kinds(kinds: str) -> None:
    op.execute(
        "alter table raw.eval_batches drop constraint eval_batches_kind_check,"
        f" add constraint eval_batches_kind_check check (kind in ({kinds}))"
    )


def upgrade() -> None:
    op.execute("alter table raw.batch_requests add column dagster_run_id text")
    op.execute(batch_launch_grants_sql(WEB_ROLE))
    _kinds("'run', 'golden_runs', 'gate', 'rejudge', 'import', 'replay'")


def downgrade() -> None:
    op.execute("delete from raw.eval_batches where kind = 'replay'")
    _kinds("'run', 'golden_runs', 'gate', 'rejudge', 'import'")
    op.execute("alter table raw.batch_requests drop column dagster_run_id")
