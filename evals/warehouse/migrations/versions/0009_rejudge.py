"""Re-judged calls: the `rejudge` source, and an index to find a call's judgments.

Revision ID: 0009
Revises: 0008

`evalhouse rejudge` stores another judge's verdict on a stored call as a new row (source
`rejudge`, parent_run_id = the graded call): a source of its own keeps it out of every rate
computed over golden or production rows, while the agreement marts can still put it beside the
original judge's verdict. Finding a call's judge rows (the rejudge plan, the web run view's
children) looks rows up by parent_run_id; the index is partial because production captures,
the bulk of the write path, have no parent.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OLD_SOURCES = "'golden', 'production', 'production_sample', 'replay', 'import', 'ci'"


def upgrade() -> None:
    _replace_source_check(f"{_OLD_SOURCES}, 'rejudge'")
    op.execute(
        "create index eval_runs_parent_run_id_idx on raw.eval_runs (parent_run_id)"
        " where parent_run_id is not null"
    )


def downgrade() -> None:
    op.execute("drop index raw.eval_runs_parent_run_id_idx")
    _replace_source_check(_OLD_SOURCES, validate=False)  # rejudge rows stay, unchecked


def _replace_source_check(sources: str, validate: bool = True) -> None:
    """Swap the check; unvalidated, it binds new rows only (a downgrade keeps rejudge rows)."""
    op.execute("alter table raw.eval_runs drop constraint eval_runs_source_check")
    op.execute(
        "alter table raw.eval_runs add constraint eval_runs_source_check"
        f" check (source in ({sources})){'' if validate else ' not valid'}"
    )
