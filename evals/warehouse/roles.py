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


def web_policies_sql(role: str = WEB_ROLE) -> str:
    """Row-level security: `role` (and roles inheriting it) inserts only replay runs and
    production runs (`POST /api/v1/runs`, a capture from any language), web reviews and prompt
    versions named by their text's hash (evals.prompts.prompt_version); never a golden, CI,
    sample or rejudge row, which feed accuracy, gate and agreement. Every other role keeps
    exactly what its grants give (migration 0011)."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        raise notice 'evalhouse: role {role} is missing; its row policies were skipped';
        return;
    end if;
    alter table raw.eval_runs enable row level security;
    alter table raw.human_reviews enable row level security;
    alter table raw.prompt_versions enable row level security;
    drop policy if exists grants_decide on raw.eval_runs;
    drop policy if exists grants_decide on raw.human_reviews;
    drop policy if exists grants_decide on raw.prompt_versions;
    drop policy if exists web_inserts_replays_and_production_only on raw.eval_runs;
    drop policy if exists web_inserts_web_reviews_only on raw.human_reviews;
    drop policy if exists web_updates_web_reviews_only on raw.human_reviews;
    drop policy if exists web_inserts_hashed_versions_only on raw.prompt_versions;
    create policy grants_decide on raw.eval_runs using (true) with check (true);
    create policy grants_decide on raw.human_reviews using (true) with check (true);
    create policy grants_decide on raw.prompt_versions using (true) with check (true);
    create policy web_inserts_replays_and_production_only on raw.eval_runs as restrictive for insert
        to {role} with check (source in ('replay', 'production'));
    create policy web_inserts_web_reviews_only on raw.human_reviews as restrictive for insert
        to {role} with check (source = 'web');
    create policy web_updates_web_reviews_only on raw.human_reviews as restrictive for update
        to {role} using (source = 'web') with check (source = 'web');
    create policy web_inserts_hashed_versions_only on raw.prompt_versions as restrictive
        for insert to {role} with check (
            prompt_version = left(encode(sha256(convert_to(template, 'UTF8')), 'hex'), 16)
        );
end $$
"""


def run_keys_policies_sql(role: str = WEB_ROLE) -> str:
    """The web role's share of raw.eval_run_keys (migration 0016), where the run log's
    uniqueness lives: it reads keys and inserts those of the runs it may insert (replay,
    production), so it can neither write a golden row nor claim a golden row's key first."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        raise notice 'evalhouse: role {role} is missing; its run-key grants were skipped';
        return;
    end if;
    grant select, insert on raw.eval_run_keys to {role};
    alter table raw.eval_run_keys enable row level security;
    drop policy if exists grants_decide on raw.eval_run_keys;
    drop policy if exists web_inserts_replays_and_production_only on raw.eval_run_keys;
    create policy grants_decide on raw.eval_run_keys using (true) with check (true);
    create policy web_inserts_replays_and_production_only on raw.eval_run_keys as restrictive
        for insert to {role} with check (source in ('replay', 'production'));
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


def batch_launch_grants_sql(role: str = WEB_ROLE) -> str:
    """The server records the Dagster run it launched for a request (migration 0020): that one
    column of raw.batch_requests, nothing else of the row."""
    return f"""
do $$
begin
    if not exists (select from pg_roles where rolname = '{role}') then
        raise notice 'evalhouse: role {role} is missing; its batch-launch grant was skipped';
        return;
    end if;
    grant update (dagster_run_id) on raw.batch_requests to {role};
end $$
"""
