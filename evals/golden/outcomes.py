"""Golden outcomes as the warehouse defines them: the dbt view `int_golden_outcomes_live`.

Golden correctness is defined once, in that view (docs/bi.md): a graded call is right by its own
verdict, or, for an answer graded by a separate judge call, by that judge's verdict. The marts
read its rows from `int_golden_outcomes`, a table dbt keeps batch by batch, which is stale until
the next build. The run summary, the gate and Dagster's golden-run metadata need a batch's
outcomes the moment it is written, before dbt runs, so they read the view itself: the same SQL,
over the run log. On a warehouse where dbt never ran, the view is created on first use (dbt run
of the view and the staging view under it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

_MODELS = ("stg_raw__eval_runs", "int_golden_outcomes_live")

CORRECTNESS = {"correct": True, "incorrect": False, "parse_error": False}
"""Outcome -> right or wrong where it decides; `unjudged` is absent (not yet decided)."""


def outcomes_view() -> str:
    """The view's relation, as the dbt manifest names it (`evals.marts`)."""
    from evals.marts import relation

    return relation("int_golden_outcomes_live")


def ensure_outcomes_view(conn: psycopg.Connection) -> None:
    """Create the outcomes view if this warehouse has none yet (needs the raw schema only)."""
    if conn.execute("select to_regclass(%s)", (outcomes_view(),)).fetchone()[0] is not None:
        return
    from evals.dbt import run_dbt

    conn.commit()  # dbt connects on its own: no open transaction of ours may hold locks
    result = run_dbt(["run", "--select", *_MODELS])
    if not result.success:
        raise RuntimeError(f"dbt could not create {outcomes_view()}: {result.exception}")
