"""Evaluation runs as records: raw.eval_batches, one row per batch of one model on one suite.

Revision ID: 0014
Revises: 0013

A batch is what a person means by "an evaluation run": model M on suite S (version V) with
prompt P, judged by J, under one batch key. Its id is derived from those, so running the same
command again (after a crash or a `kill -9`) reopens the same record and completes it. The
run-log rows of a batch carry its id in `attributes.eval_batch_id`. The model's lineage
(family, checkpoint, step, owner, tags) is copied from the config when the batch starts, so a
training curve still reads right after the config moves on.
"""

from alembic import op

from evals.warehouse.roles import WEB_ROLE

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw.eval_batches (
            batch_id             uuid primary key,
            kind                 text not null
                check (kind in ('run', 'golden_runs', 'gate', 'rejudge', 'import')),
            batch_key            text not null,
            source               text not null,
            suite                text,
            suite_version        text,
            model                text not null,
            models_answered      text[] not null default '{}',
            prompt_version       text,
            judge                text,
            judge_prompt_version text,
            code_version         text,
            started_by           text not null,
            model_family         text,
            model_checkpoint     text,
            model_step           bigint,
            model_owner          text,
            model_tags           text[] not null default '{}',
            planned_calls        integer check (planned_calls is null or planned_calls >= 0),
            status               text not null
                check (status in ('running', 'completed', 'failed', 'cancelled')),
            invocations          integer not null default 1 check (invocations >= 1),
            started_at           timestamptz not null default now(),
            heartbeat_at         timestamptz not null default now(),
            ended_at             timestamptz,
            calls                integer not null default 0 check (calls >= 0),
            settled              integer not null default 0 check (settled >= 0),
            errors               integer not null default 0 check (errors >= 0),
            parse_errors         integer not null default 0 check (parse_errors >= 0),
            error_message        text
        )
        """
    )
    op.execute("create index eval_batches_started_at_idx on raw.eval_batches (started_at)")
    op.execute("create index eval_batches_suite_model_idx on raw.eval_batches (suite, model)")
    op.execute(
        f"""
        do $$
        begin
            if exists (select from pg_roles where rolname = '{WEB_ROLE}') then
                grant select on raw.eval_batches to {WEB_ROLE};
            end if;
        end $$
        """
    )


def downgrade() -> None:
    op.execute("drop table raw.eval_batches")
