"""The web app's least-privilege role `evalhouse_web`.

It reads the run log, reviews, prompt versions, golden suites, alerts and the marts; it may add
human reviews and replay rows (and register a replayed prompt version), and may set only the
acknowledgement columns of an alert. Nothing else: no delete, no update of a verdict, no DDL.

Roles are cluster-wide, so creating it is idempotent (several databases of one cluster each run
this migration) and tolerant: on a managed Postgres where CREATE ROLE is refused, the migration
notes it and goes on; an administrator then creates the role and re-runs the grants (docs/web.md).
It is created without a password: the embedded server gives it one when it provisions the data
dir (evals.warehouse.access); elsewhere give it a password with ALTER ROLE.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from evals.warehouse.roles import WEB_ROLE, create_role_sql, web_grants_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = WEB_ROLE


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
    op.execute(create_role_sql(ROLE, login=True))
    op.execute(web_grants_sql(ROLE))


def downgrade() -> None:
    op.execute(_REVOKE)
