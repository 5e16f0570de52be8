"""The JSON API's tables: hashed API tokens, model connection checks, API-started batches.

Revision ID: 0015
Revises: 0014

- `api_tokens`: only a token's sha256 is stored (tokens are 256-bit random, so a fast hash is
  enough); the plain token is shown once, by `evalhouse api token create`.
- `model_checks`: one row per `evalhouse models check` call per model; the API shows the last.
- `batch_requests`: one row per `POST /api/v1/batches`: the request, its state while the
  server's worker runs it (with a heartbeat, so a killed worker is detectably stale), and the
  callback's outbox columns (claimed under a row lock, delivered once).

The web role reads all three (and the Alembic version, for /api/v1/health) and may insert a
batch request; everything else is the warehouse owner's (the CLI and the batch worker).
"""

from alembic import op

from evals.warehouse.roles import WEB_ROLE, api_grants_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw.api_tokens (
            token_id bigserial primary key,
            name text not null,
            token_hash text not null unique,
            prefix text not null,
            created_at timestamptz not null default now(),
            revoked_at timestamptz
        )
        """
    )
    op.execute(
        """
        create table raw.model_checks (
            check_id bigserial primary key,
            model_name text not null,
            litellm_model text not null,
            checked_at timestamptz not null default now(),
            ok boolean not null,
            response_model text,
            latency_ms double precision,
            error_class text check (error_class in
                ('auth', 'not_found', 'rate_limited', 'unreachable', 'error')),
            error_message text
        )
        """
    )
    op.execute(
        "create index model_checks_latest_idx on raw.model_checks (model_name, checked_at desc)"
    )
    op.execute(
        """
        create table raw.batch_requests (
            request_id uuid primary key,
            created_at timestamptz not null default now(),
            requested_by text not null,
            suite text not null,
            model text not null,
            judge text,
            baseline text,
            item_limit integer check (item_limit > 0),
            trials integer not null default 1 check (trials between 1 and 100),
            batch_key text not null,
            callback_url text,
            status text not null default 'queued'
                check (status in ('queued', 'running', 'completed', 'failed')),
            started_at timestamptz,
            heartbeat_at timestamptz,
            finished_at timestamptz,
            summary jsonb,
            error text,
            callback_attempts integer not null default 0,
            callback_last_attempt_at timestamptz,
            callback_last_error text,
            callback_delivered_at timestamptz
        )
        """
    )
    op.execute("create index batch_requests_status_idx on raw.batch_requests (status)")
    op.execute(api_grants_sql(WEB_ROLE))


def downgrade() -> None:
    op.execute("drop table raw.batch_requests")
    op.execute("drop table raw.model_checks")
    op.execute("drop table raw.api_tokens")
