"""The run log partitioned by month; its uniqueness kept in a narrow keys table.

Revision ID: 0016
Revises: 0015

`raw.eval_runs` becomes range-partitioned on `started_at`, one partition per calendar month
(UTC), so retention drops whole months and vacuum and index upkeep stay per month. Postgres
requires the partition key in every unique index of a partitioned table, and neither "a run id
is stored once" nor "one live settled row per idempotency key" involves the call's time (a
retry of a key can settle months after its first failure). Both rules move to
`raw.eval_run_keys`: one narrow row per run (run id, started_at, key, source, status,
superseded_at), unpartitioned, with the primary key on run_id and the partial unique index on
the key, written by `evals.runlog` in the same transaction as the row. Reviews and the review
queue now reference it (they cannot reference a partitioned table by run id alone).

Every row is copied (tests/test_partitioned_run_log.py; 1M rows under `-m scale`). Views over
the table (dbt's staging, the golden-outcomes view) are recreated with their grants, since a
view is bound to the table it was made on. No default partition: a row of a month not yet
made is refused by Postgres, and the writer makes that month and writes again, so no row ever
sits where a later partition would have to take it back from.
"""

from alembic import op

from evals import runlog
from evals.warehouse.roles import WEB_ROLE, run_keys_policies_sql, web_grants_sql, web_policies_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_SETTLED = "status in ('ok', 'parse_error')"
# Indexes of the run log (0001, 0005, 0008, 0009, 0010), on every partition; the unique ones
# that cannot be partitioned live on raw.eval_run_keys.
_INDEXES = (
    "create index eval_runs_started_at_idx on raw.eval_runs (started_at)",
    "create index eval_runs_ingested_at_brin on raw.eval_runs using brin (ingested_at)",
    "create index eval_runs_stage_day_idx on raw.eval_runs (stage, started_at)",
    "create index eval_runs_parent_run_id_idx on raw.eval_runs (parent_run_id)"
    " where parent_run_id is not null",
    "create index eval_runs_suite_item_idx on raw.eval_runs (suite, item_id)",
    "create index eval_runs_batch_idx on raw.eval_runs (batch_id)",
    "create index eval_runs_golden_graded_idx on raw.eval_runs (batch_id)"
    " where source in ('golden', 'ci') and role in ('candidate', 'grader')",
    "create index eval_runs_import_file_idx on raw.eval_runs"
    " ((attributes ->> 'imported_from')) where source = 'import'",
    "create index eval_runs_import_key_idx on raw.eval_runs (idempotency_key)"
    " where source = 'import'",
    "create index eval_runs_superseded_idx on raw.eval_runs (run_id)"
    " where superseded_at is not null",
)
_REFERENCES = (
    ("human_reviews", "human_reviews_run_id_fkey"),
    ("review_queue", "review_queue_run_id_fkey"),
)

# The one definition of a month partition, run as the owner: any writer that meets a month with
# no partition may make it (the web role too, which cannot create tables), but a role that does
# not own the table only months from 2000-01 to next month (the importer's bounds of a
# plausible call), so a client cannot make thousands of partitions. The table is created empty
# and then attached: SHARE UPDATE EXCLUSIVE on the parent, so reads and writes go on. Rows of
# ~2-3 KB stay inline and uncompressed (migration 0005's reason, per partition).
_CREATE_PARTITIONS = """
create function raw.create_eval_runs_partitions(stamps timestamptz[]) returns setof text
language plpgsql security definer set search_path = pg_catalog, pg_temp set timezone = 'UTC'
as $$
declare
    month timestamptz;
    name text;
    owner_role oid := (select relowner from pg_class where oid = 'raw.eval_runs'::regclass);
begin
    perform pg_advisory_xact_lock(7351016);
    for month in
        select distinct date_trunc('month', stamp) from unnest(stamps) as stamp order by 1
    loop
        name := 'eval_runs_y' || to_char(month, 'YYYY"m"MM');
        continue when to_regclass('raw.' || name) is not null;
        if not pg_has_role(session_user, owner_role, 'USAGE')
           and (month < '2000-01-01' or month > now() + interval '1 month') then
            raise exception 'no partition of raw.eval_runs for %, and only its owner may make one'
                ' outside 2000-01 .. next month', to_char(month, 'YYYY-MM')
                using errcode = 'insufficient_privilege';
        end if;
        execute format(
            'create table raw.%I (like raw.eval_runs including defaults including constraints)'
            ' with (toast_tuple_target = 8160)', name);
        execute format(
            'alter table raw.eval_runs attach partition raw.%I for values from (%L) to (%L)',
            name, month, month + interval '1 month');
        return next name;
    end loop;
end
$$
"""

# A row deleted from the run log by any means (an operator's cleanup, a test simulating a crash)
# takes its key row with it, so the key is free for a re-run. Partition drops fire no trigger:
# `evals.runlog.delete_erasure_set` deletes those keys itself.
_FORGET_KEYS = """
create function raw.eval_runs_forget_keys() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
    delete from raw.eval_run_keys as k using gone where k.run_id = gone.run_id;
    return null;
end
$$;
create trigger eval_runs_forget_keys after delete on raw.eval_runs
    referencing old table as gone for each statement
    execute function raw.eval_runs_forget_keys();
"""

# Views reading raw.eval_runs, directly or through other views, parents first, with their ACLs.
_VIEWS = """
with recursive views (oid, depth) as (
    select r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
    where d.classid = 'pg_rewrite'::regclass and d.refobjid = 'raw.eval_runs'::regclass
      and r.ev_class <> 'raw.eval_runs'::regclass
    union
    select r.ev_class, v.depth + 1 from views v
    join pg_depend d on d.refobjid = v.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite r on r.oid = d.objid and r.ev_class <> v.oid
)
select c.oid::regclass::text, c.relkind, pg_get_viewdef(c.oid),
    coalesce((select array_agg(format('grant %s on %s to %s', a.privilege_type,
        c.oid::regclass, a.grantee::regrole)) from aclexplode(c.relacl) a
        where a.grantee <> c.relowner and a.grantee <> 0), '{}')
from (select oid, max(depth) as depth from views group by oid) v
join pg_class c on c.oid = v.oid
order by v.depth
"""


def _save_views(bind) -> list[tuple[str, str, str, list[str]]]:
    return [tuple(row) for row in bind.exec_driver_sql(_VIEWS).all()]


def _restore_views(views) -> None:
    for name, kind, definition, grants in views:
        materialized = "materialized " if kind == "m" else ""
        op.execute(f"create {materialized}view {name} as {definition}")
        for grant in grants:
            op.execute(grant)


def _replace_table(create_parent: str) -> list:
    """Rename the run log aside, create its replacement from `create_parent`; returns the
    views to recreate once the old table is dropped."""
    views = _save_views(op.get_bind())
    op.execute("alter table raw.eval_runs rename to eval_runs_old")
    op.execute(create_parent)
    return views


def _drop_old(views) -> None:
    for table, constraint in _REFERENCES:
        op.execute(f"alter table raw.{table} drop constraint if exists {constraint}")
    op.execute("drop table raw.eval_runs_old cascade")
    _restore_views(views)


def upgrade() -> None:
    views = _replace_table(
        "create table raw.eval_runs (like raw.eval_runs_old including defaults including"
        " constraints) partition by range (started_at)"
    )
    op.execute(_CREATE_PARTITIONS)
    conn = op.get_bind().connection.driver_connection
    runlog.create_partitions(
        conn,
        [
            row[0]
            for row in conn.execute(
                "select distinct date_trunc('month', started_at, 'UTC') from raw.eval_runs_old"
            )
        ],
    )
    runlog.create_partitions_ahead(conn)
    op.execute("insert into raw.eval_runs select * from raw.eval_runs_old")
    op.execute(
        """
        create table raw.eval_run_keys (
            run_id          uuid not null,
            started_at      timestamptz not null,
            idempotency_key text not null,
            source          text not null,
            status          text not null,
            superseded_at   timestamptz
        )
        """
    )
    runlog.add_missing_keys(conn)
    _drop_old(views)
    op.execute("alter table raw.eval_run_keys add primary key (run_id)")
    op.execute(
        "create unique index eval_run_keys_settled_idx on raw.eval_run_keys (idempotency_key)"
        f" where {_SETTLED} and superseded_at is null"
    )
    op.execute("alter table raw.eval_runs add primary key (run_id, started_at)")
    for index in _INDEXES:
        op.execute(index)
    for table, constraint in _REFERENCES:
        op.execute(
            f"alter table raw.{table} add constraint {constraint} foreign key (run_id)"
            " references raw.eval_run_keys (run_id)"
        )
    op.execute(_FORGET_KEYS)
    op.execute(web_grants_sql(WEB_ROLE))
    op.execute(web_policies_sql(WEB_ROLE))
    op.execute(run_keys_policies_sql(WEB_ROLE))
    op.execute("analyze raw.eval_runs")
    op.execute("analyze raw.eval_run_keys")


def downgrade() -> None:
    views = _replace_table(
        "create table raw.eval_runs (like raw.eval_runs_old including defaults including"
        " constraints) with (toast_tuple_target = 8160)"
    )
    op.execute("insert into raw.eval_runs select * from raw.eval_runs_old")
    op.execute("drop table raw.eval_run_keys cascade")
    op.execute("drop function raw.create_eval_runs_partitions(timestamptz[])")
    _drop_old(views)
    op.execute("drop function raw.eval_runs_forget_keys()")
    op.execute("alter table raw.eval_runs add primary key (run_id)")
    op.execute(
        "create unique index eval_runs_settled_key_idx on raw.eval_runs (idempotency_key)"
        f" where {_SETTLED} and superseded_at is null"
    )
    for index in _INDEXES:
        op.execute(index)
    for table, constraint in _REFERENCES:
        op.execute(
            f"alter table raw.{table} add constraint {constraint} foreign key (run_id)"
            " references raw.eval_runs (run_id)"
        )
    op.execute(web_grants_sql(WEB_ROLE))
    op.execute(web_policies_sql(WEB_ROLE))
