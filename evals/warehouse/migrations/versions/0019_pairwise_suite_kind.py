"""Pairwise golden suites: raw.golden_suites.kind may be 'pairwise' (issue 13).

Revision ID: 0019
Revises: 0018

A pairwise suite's items hold a question and two responses (or none); its verdicts are fixed
(a, b, tie) and none passes, so `passing_verdicts` is the empty array.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _kinds(kinds: str) -> None:
    op.execute(
        "alter table raw.golden_suites drop constraint golden_suites_kind_check,"
        f" add constraint golden_suites_kind_check check (kind in ({kinds}))"
    )


def upgrade() -> None:
    _kinds("'grader', 'answer', 'pairwise'")


def downgrade() -> None:
    _kinds("'grader', 'answer'")
