"""The web role writes only what the web makes: replays, its own reviews, its sessions.

Revision ID: 0011
Revises: 0010

Its grants let `evalhouse_web` INSERT into raw.eval_runs (replays) and raw.human_reviews (the
page's reviews), but any row: a forged `source = 'golden'` run went in. Row-level security makes
Postgres refuse it (evals.warehouse.roles.web_policies_sql): a permissive policy leaves every
role what its grants give, and restrictive policies for the web role allow it `replay` runs,
`web` reviews, and prompt versions (a replay registers the one it used) only under the hash of
their own text. The table owner (and superusers) bypass row-level security, so the pipeline's
writes and dbt's reads are untouched. Postgres refuses COPY FROM to a role under row-level
security, so evals.runlog writes a replay of the web role by INSERT … SELECT.

raw.web_sessions is the server-side half of the web's session cookie (evals.web.sessions): a
cookie is honoured only while its row exists and has not expired; logging out deletes it. It
keeps the SHA-256 of the session id, never the id itself.
"""

from alembic import op

from evals.warehouse.roles import WEB_ROLE, web_policies_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(web_policies_sql(WEB_ROLE))
    op.execute(
        """
        create table raw.web_sessions (
            session_hash text primary key,
            user_name    text not null,
            created_at   timestamptz not null default now(),
            expires_at   timestamptz not null
        )
        """
    )
    op.execute(f"""
do $$
begin
    if exists (select from pg_roles where rolname = '{WEB_ROLE}') then
        grant select, insert, delete on raw.web_sessions to {WEB_ROLE};
    end if;
end $$
""")


def downgrade() -> None:
    op.execute("drop table raw.web_sessions")
    for table, policies in (
        ("eval_runs", ("grants_decide", "web_inserts_replays_and_production_only")),
        (
            "human_reviews",
            ("grants_decide", "web_inserts_web_reviews_only", "web_updates_web_reviews_only"),
        ),
        ("prompt_versions", ("grants_decide", "web_inserts_hashed_versions_only")),
    ):
        for policy in policies:
            op.execute(f"drop policy if exists {policy} on raw.{table}")
        op.execute(f"alter table raw.{table} disable row level security")
