"""Release-gate decisions on a pairwise preference: the decision's kind and its judge.

Revision ID: 0018
Revises: 0016

- `kind`: `accuracy` (the paired golden outcomes of both sides, every decision before this) or
  `pairwise` (a judge's preferences between the two sides, docs/release-gate.md).
- `judge`: the judge model of a pairwise decision (`MODEL` or `MODEL@PROMPT_VERSION`), null for
  accuracy decisions.
"""

from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table raw.gate_decisions
            add column kind text not null default 'accuracy'
                check (kind in ('accuracy', 'pairwise')),
            add column judge text,
            add constraint gate_decisions_pairwise_has_judge
                check ((kind = 'pairwise') = (judge is not null))
        """
    )


def downgrade() -> None:
    op.execute(
        "alter table raw.gate_decisions drop constraint gate_decisions_pairwise_has_judge,"
        " drop column judge, drop column kind"
    )
