"""Per-webhook alert deliveries, the human-review queue and release-gate decisions.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw.alert_deliveries (
            alert_id        bigint not null references raw.alerts (alert_id) on delete cascade,
            webhook         text not null,
            attempts        integer not null default 0,
            last_attempt_at timestamptz,
            last_error      text,
            delivered_at    timestamptz,
            primary key (alert_id, webhook)
        )
        """
    )
    op.execute(
        """
        create table raw.review_queue (
            run_id      uuid primary key references raw.eval_runs (run_id),
            stratum     text,
            reason      text not null,
            queued_at   timestamptz not null default now(),
            exported_at timestamptz
        )
        """
    )
    op.execute(
        """
        create table raw.gate_decisions (
            decision_id  uuid primary key,
            suite        text not null,
            suite_version text,
            baseline     text not null,
            candidate    text not null,
            decision     text not null check (decision in ('deploy', 'no-deploy', 'insufficient-data')),
            criteria     jsonb not null,
            summary      jsonb not null default '{}'::jsonb,
            report_path  text,
            decided_at   timestamptz not null default now()
        )
        """
    )
    op.execute("create index gate_decisions_decided_at_idx on raw.gate_decisions (decided_at)")


def downgrade() -> None:
    op.execute("drop table raw.gate_decisions")
    op.execute("drop table raw.review_queue")
    op.execute("drop table raw.alert_deliveries")
