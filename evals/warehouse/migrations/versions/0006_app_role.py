"""The web app's least-privilege role `evalhouse_web`.

It reads the run log, reviews, prompt versions, golden suites, alerts and the marts; it may add
human reviews and replay rows (and register a replayed prompt version), and may set only the
acknowledgement columns of an alert. Nothing else: no delete, no update of a verdict, no DDL.

Roles are cluster-wide, so creating it is idempotent (several databases of one cluster each run
this migration) and tolerant: on a managed Postgres where CREATE ROLE is refused, the migration
notes it and goes on; an administrator then creates the role and re-runs the grants (docs/web.md).
It logs in without a password, which only a trust-auth socket (the embedded default) accepts;
elsewhere give it a password with ALTER ROLE.

Revision ID: 0006
Revises: 0002
"""

from alembic import op

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = "evalhouse_web"


def create_role_sql(role: str = ROLE) -> str:
    """Create the role unless it exists; a refusal (no CREATEROLE) is a notice, not an error."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        begin
            create role {role} login;
        exception when insufficient_privilege or duplicate_object then
            raise notice 'evalhouse: role {role} not created (%); see docs/web.md', sqlerrm;
        end;
    end if;
end $$
"""


def grants_sql(role: str = ROLE) -> str:
    """The app's grants, skipped with a notice when the role does not exist."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        raise notice 'evalhouse: role {role} is missing; its grants were skipped';
        return;
    end if;
    grant usage on schema raw to {role};
    grant select on raw.eval_runs, raw.prompt_versions, raw.golden_suites, raw.golden_items,
        raw.human_reviews, raw.alerts, raw.alert_deliveries, raw.review_queue to {role};
    grant insert on raw.human_reviews, raw.eval_runs, raw.prompt_versions to {role};
    grant update (acknowledged_at, acknowledged_by) on raw.alerts to {role};
    create schema if not exists marts;
    grant usage on schema marts to {role};
    grant select on all tables in schema marts to {role};
    alter default privileges in schema marts grant select on tables to {role};
end $$
"""


_REVOKE = f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{ROLE}') then
        return;
    end if;
    alter default privileges in schema marts revoke select on tables from {ROLE};
    revoke all on all tables in schema marts from {ROLE};
    revoke usage on schema marts from {ROLE};
    revoke all on all tables in schema raw from {ROLE};
    revoke usage on schema raw from {ROLE};
    begin
        drop role {ROLE};
    exception when dependent_objects_still_exist or insufficient_privilege then
        raise notice 'evalhouse: role {ROLE} kept (%)', sqlerrm;
    end;
end $$
"""


def upgrade() -> None:
    op.execute(create_role_sql())
    op.execute(grants_sql())


def downgrade() -> None:
    op.execute(_REVOKE)
