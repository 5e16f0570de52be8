"""A read-only role for BI tools: SELECT on the `marts` schema, nothing on `raw` or `staging`.

Revision ID: 0004
Revises: 0003

Roles are cluster-wide, so the role is created only if absent (another database of the same
server may have made it) and created NOLOGIN: an operator enables it with a password
(`alter role evalhouse_bi login password '…'`, see docs/bi.md). The schema `marts` is created
here so the grant exists before dbt's first build; dbt re-grants SELECT on every table it
(re)builds in a post-hook (macros/grants.sql), and the default privileges below cover tables
created by the migrating user. (dbt's own `grants:` config is not used: on incremental models it
revokes every grant it was not told about, e.g. the web app's role.)
"""

from alembic import op

from evals.warehouse.roles import BI_ROLE, create_role_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE = BI_ROLE


def upgrade() -> None:
    op.execute(create_role_sql(ROLE, login=False))
    op.execute("create schema if not exists marts")
    op.execute(f"grant usage on schema marts to {ROLE}")
    op.execute(f"grant select on all tables in schema marts to {ROLE}")
    op.execute(f"alter default privileges in schema marts grant select on tables to {ROLE}")
    op.execute(f"revoke all on schema raw from {ROLE}")


def downgrade() -> None:
    op.execute(f"alter default privileges in schema marts revoke select on tables from {ROLE}")
    op.execute(f"revoke select on all tables in schema marts from {ROLE}")
    op.execute(f"revoke usage on schema marts from {ROLE}")
    # The role may still hold privileges in other databases of this server: keep it then.
    op.execute(
        f"""
        do $$
        begin
            drop role if exists {ROLE};
        exception when dependent_objects_still_exist then
            null;
        end
        $$
        """
    )
