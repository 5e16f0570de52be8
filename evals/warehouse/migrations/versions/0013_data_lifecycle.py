"""The data lifecycle: an audit of erasures, and where each review-queue export went.

Revision ID: 0013
Revises: 0011

`evalhouse forget` and retention delete learners' rows; raw.data_erasures records each erasure
(who, when, how many rows per table and how many spooled or exported lines) and never what was
erased: no subject id, no text, no run id. An export of the review queue copies submissions to
a file, so raw.review_queue.exported_to keeps the path it went to, where `forget` can find and
rewrite it.
"""

from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw.data_erasures (
            erasure_id       uuid primary key,
            action           text not null check (action in ('forget', 'retention')),
            requested_by     text not null,
            scope            jsonb not null default '{}'::jsonb,
            rows_erased      jsonb not null default '{}'::jsonb,
            files            jsonb not null default '{}'::jsonb,
            erased_at        timestamptz not null default now(),
            marts_rebuilt_at timestamptz
        )
        """
    )
    op.execute("create index data_erasures_erased_at_idx on raw.data_erasures (erased_at)")
    op.execute("alter table raw.review_queue add column exported_to text")


def downgrade() -> None:
    op.execute("alter table raw.review_queue drop column exported_to")
    op.execute("drop table raw.data_erasures")
