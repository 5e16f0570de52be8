"""raw schema: the run log, prompt versions, golden items and suites, human reviews, alerts.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("create schema if not exists raw")
    op.execute(
        """
        create table raw.eval_runs (
            run_id              uuid primary key,
            idempotency_key     text not null,
            batch_id            text,
            parent_run_id       uuid,
            trial               integer not null default 0,
            source              text not null
                check (source in ('golden', 'production', 'production_sample', 'replay', 'import', 'ci')),
            touchpoint          text,
            suite               text,
            suite_version       text,
            item_id             text,
            item_hash           text,
            stage               text,
            category            text,
            subject_id          text,
            orchestrator_run_id text,
            code_version        text,
            rubric              text,
            submission          text,
            prior_context       text,
            inputs              jsonb not null default '{}'::jsonb,
            messages            jsonb not null default '[]'::jsonb,
            params              jsonb not null default '{}'::jsonb,
            role                text not null check (role in ('candidate', 'judge', 'grader')),
            model               text not null,
            response_model      text,
            provider            text,
            prompt_name         text,
            prompt_version      text,
            output_text         text,
            verdict             text,
            passed              boolean,
            score               double precision,
            feedback            jsonb,
            issue_tags          text[] not null default '{}',
            expected_verdict    text,
            sample_weight       double precision check (sample_weight is null or sample_weight >= 1),
            started_at          timestamptz not null,
            latency_ms          double precision check (latency_ms is null or latency_ms >= 0),
            input_tokens        integer check (input_tokens is null or input_tokens >= 0),
            output_tokens       integer check (output_tokens is null or output_tokens >= 0),
            cost_usd            double precision check (cost_usd is null or cost_usd >= 0),
            timings             jsonb,
            attributes          jsonb not null default '{}'::jsonb,
            status              text not null check (status in ('ok', 'error', 'timeout', 'parse_error')),
            error_class         text,
            error_message       text,
            attempts            integer not null default 1 check (attempts >= 0),
            ingested_at         timestamptz not null default now()
        )
        """
    )
    # One settled (ok / parse_error) row per idempotency key; failed calls keep their own rows
    # (every call leaves a row) and are retried under the same key until one settles.
    op.execute(
        "create unique index eval_runs_settled_key_idx on raw.eval_runs (idempotency_key)"
        " where status in ('ok', 'parse_error')"
    )
    op.execute("create index eval_runs_idempotency_key_idx on raw.eval_runs (idempotency_key)")
    op.execute("create index eval_runs_started_at_idx on raw.eval_runs (started_at)")
    op.execute("create index eval_runs_ingested_at_idx on raw.eval_runs (ingested_at)")
    op.execute("create index eval_runs_stage_day_idx on raw.eval_runs (stage, started_at)")
    op.execute(
        "create index eval_runs_parent_idx on raw.eval_runs (parent_run_id) where parent_run_id is not null"
    )
    op.execute("create index eval_runs_suite_item_idx on raw.eval_runs (suite, item_id)")
    op.execute("create index eval_runs_batch_idx on raw.eval_runs (batch_id)")

    op.execute(
        """
        create table raw.prompt_versions (
            prompt_name    text not null,
            prompt_version text not null,
            template       text not null,
            created_at     timestamptz not null default now(),
            primary key (prompt_name, prompt_version)
        )
        """
    )
    op.execute(
        """
        create table raw.golden_suites (
            suite            text not null,
            suite_version    text not null,
            kind             text not null check (kind in ('grader', 'answer')),
            description      text,
            verdicts         text[] not null,
            passing_verdicts text[] not null,
            issue_tags       text[] not null default '{}',
            item_count       integer not null check (item_count >= 0),
            source_path      text,
            loaded_at        timestamptz not null default now(),
            primary key (suite, suite_version)
        )
        """
    )
    op.execute(
        """
        create table raw.golden_items (
            suite         text not null,
            suite_version text not null,
            item_id       text not null,
            item_hash     text not null,
            stage         text,
            category      text,
            inputs        jsonb not null,
            expected      jsonb not null,
            loaded_at     timestamptz not null default now(),
            primary key (suite, suite_version, item_id),
            foreign key (suite, suite_version) references raw.golden_suites (suite, suite_version)
        )
        """
    )
    op.execute(
        """
        create table raw.human_reviews (
            review_id   uuid primary key,
            run_id      uuid not null references raw.eval_runs (run_id),
            reviewer    text not null,
            verdict     text,
            score       double precision,
            issue_tags  text[] not null default '{}',
            notes       text,
            source      text not null default 'cli',
            reviewed_at timestamptz not null default now(),
            ingested_at timestamptz not null default now(),
            constraint human_reviews_run_reviewer_key unique (run_id, reviewer)
        )
        """
    )
    op.execute("create index human_reviews_reviewed_at_idx on raw.human_reviews (reviewed_at)")
    op.execute(
        """
        create table raw.alerts (
            alert_id            bigint generated always as identity primary key,
            dedupe_key          text not null unique,
            kind                text not null,
            severity            text not null check (severity in ('info', 'warning', 'critical')),
            subject             text not null,
            message             text not null,
            statistic           text,
            observed            double precision,
            expected_low        double precision,
            expected_high       double precision,
            window_start        timestamptz,
            window_end          timestamptz,
            evidence            jsonb not null default '{}'::jsonb,
            example_run_ids     uuid[] not null default '{}',
            orchestrator_run_id text,
            created_at          timestamptz not null default now(),
            delivered_at        timestamptz,
            delivery_attempts   integer not null default 0,
            acknowledged_at     timestamptz,
            acknowledged_by     text
        )
        """
    )
    op.execute("create index alerts_created_at_idx on raw.alerts (created_at)")


def downgrade() -> None:
    op.execute("drop schema raw cascade")
