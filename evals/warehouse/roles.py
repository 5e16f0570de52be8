"""Cluster-wide roles the migrations create: idempotent, and tolerant of a managed Postgres.

Roles belong to the server, not a database, so several warehouses on one server each run the same
migration; and where the migrating user has no CREATEROLE (most managed Postgres offerings) the
migration notes it and goes on, leaving an administrator to create the role (docs/web.md, docs/bi.md).
"""

WEB_ROLE = "evalhouse_web"
BI_ROLE = "evalhouse_bi"
REVIEW_LABEL_COLUMNS = (
    "verdict",
    "score",
    "issue_tags",
    "notes",
    "source",
    "reviewed_at",
    "ingested_at",
)
"""What `evals.reviews.write_reviews` may replace, so the web's reviews take the same statement."""


def create_role_sql(role: str, *, login: bool) -> str:
    """Create the role unless it exists; a refusal (no CREATEROLE) is a notice, not an error."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        begin
            create role {role} {"login" if login else "nologin"};
        exception when insufficient_privilege or duplicate_object then
            raise notice 'evalhouse: role {role} not created (%); see docs/web.md', sqlerrm;
        end;
    end if;
end $$
"""


def web_grants_sql(role: str = WEB_ROLE) -> str:
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
    grant update ({", ".join(REVIEW_LABEL_COLUMNS)}) on raw.human_reviews to {role};
    create schema if not exists marts;
    grant usage on schema marts to {role};
    grant select on all tables in schema marts to {role};
    alter default privileges in schema marts grant select on tables to {role};
end $$
"""


def api_grants_sql(role: str = WEB_ROLE) -> str:
    """What the JSON API reads and adds beyond the pages (migration 0015), skipped with a notice
    when the role does not exist."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        raise notice 'evalhouse: role {role} is missing; its API grants were skipped';
        return;
    end if;
    grant select on raw.api_tokens, raw.model_checks, raw.batch_requests to {role};
    grant insert on raw.batch_requests to {role};
    grant select on public.alembic_version to {role};
end $$
"""
