"""The web role writes reviews by the table's one rule (evals.reviews.write_reviews).

Revision ID: 0007
Revises: 0006

The page used to insert its own way (a random review id, conflicts ignored); now every label goes
through the one upsert (review id derived from run × reviewer; a newer, different label replaces
the reviewer's own). `INSERT … ON CONFLICT DO UPDATE` needs UPDATE on the columns it sets even
when nothing conflicts, so the web role may update the label columns of raw.human_reviews, and
nothing else of it (no delete, no change of run or reviewer).
"""

from alembic import op

from evals.warehouse.roles import REVIEW_LABEL_COLUMNS, WEB_ROLE, web_grants_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(web_grants_sql(WEB_ROLE))


def downgrade() -> None:
    op.execute(f"""
do $$
begin
    if exists (select from pg_roles where rolname = '{WEB_ROLE}') then
        revoke update ({", ".join(REVIEW_LABEL_COLUMNS)}) on raw.human_reviews from {WEB_ROLE};
    end if;
end $$
""")
