"""Alerts become incidents: one open alert per subject, updated night after night, then resolved.

A finding on a subject that already has a firing alert of the same kind no longer raises a new
alert: it is recorded as an occurrence of that alert (raw.alert_occurrences, one row per check
window, so re-running a night still adds nothing), and the alert's revision goes up. A check
that evaluates a night and finds nothing on a firing subject resolves it (revision up again).
Each webhook keeps the revision it last received, so it hears "firing", "still firing" or
"resolved" once per change, never the same message twice.

Existing alerts: the newest of each kind and subject stays firing, older ones are resolved;
every existing alert gets its first occurrence; deliveries already made count as revision 1.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table raw.alerts
            add column incident_key text generated always as (kind || ':' || subject) stored,
            add column status text not null default 'firing'
                check (status in ('firing', 'resolved')),
            add column revision integer not null default 1,
            add column occurrences integer not null default 1,
            add column updated_at timestamptz,
            add column resolved_at timestamptz
        """
    )
    op.execute(
        """
        update raw.alerts a set status = 'resolved', resolved_at = a.created_at
        where exists (
            select from raw.alerts newer
            where newer.incident_key = a.incident_key and newer.alert_id > a.alert_id
        )
        """
    )
    op.execute(
        "create unique index alerts_one_firing_per_incident on raw.alerts (incident_key)"
        " where status = 'firing'"
    )
    op.execute(
        """
        create table raw.alert_occurrences (
            dedupe_key      text primary key,
            alert_id        bigint not null references raw.alerts (alert_id) on delete cascade,
            severity        text not null check (severity in ('info', 'warning', 'critical')),
            message         text not null,
            statistic       text,
            observed        double precision,
            window_start    timestamptz,
            window_end      timestamptz,
            evidence        jsonb not null default '{}'::jsonb,
            orchestrator_run_id text,
            recorded_at     timestamptz not null default now()
        )
        """
    )
    op.execute("create index alert_occurrences_alert_idx on raw.alert_occurrences (alert_id)")
    op.execute(
        """
        insert into raw.alert_occurrences (
            dedupe_key, alert_id, severity, message, statistic, observed, window_start,
            window_end, evidence, orchestrator_run_id, recorded_at
        )
        select dedupe_key, alert_id, severity, message, statistic, observed, window_start,
            window_end, evidence, orchestrator_run_id, created_at
        from raw.alerts
        """
    )
    op.execute(
        "alter table raw.alert_deliveries add column delivered_revision integer not null default 0"
    )
    op.execute(
        "update raw.alert_deliveries set delivered_revision = 1 where delivered_at is not null"
    )
    op.execute(
        """
        do $$
        begin
            if exists (select from pg_roles where rolname = 'evalhouse_web') then
                grant select on raw.alert_occurrences to evalhouse_web;
            end if;
        end $$
        """
    )


def downgrade() -> None:
    op.execute("alter table raw.alert_deliveries drop column delivered_revision")
    op.execute("drop table raw.alert_occurrences")
    op.execute("drop index raw.alerts_one_firing_per_incident")
    op.execute(
        """
        alter table raw.alerts
            drop column resolved_at, drop column updated_at, drop column occurrences,
            drop column revision, drop column status, drop column incident_key
        """
    )
