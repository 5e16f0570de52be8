"""The plan of a pairwise run: responses to generate, then judgments, each one call and one key.

Keys (evals.runlog.idempotency_key) make a re-run make only what is missing:
- a generated response: batch key, item hash, `candidate`, model, its LiteLLM model, prompt
  version, params, trial 0 — neither the order nor the judge's trial, so both orders and every
  trial judge the same response, and a re-run (or another judge) reuses it;
- a judgment: batch key, item hash, `judge`, judge, its LiteLLM model, judge prompt version,
  params, trial, the two contestants and the position — one per pair, order and trial.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from evals.golden import GoldenItem
    from evals.pairwise.request import Side

_KEY_CHUNK = 5000


@dataclass
class Generation:
    """One side's answer to one item (`letter` a = baseline, b = candidate)."""

    item: GoldenItem
    letter: str
    side: Side
    key: str
    call_main: bool = True  # the shape evals.runner.claiming counts calls by
    judge_key: None = None


@dataclass(frozen=True)
class Response:
    """A response a judgment shows: stored in the item, or a generated row's text and id."""

    text: str
    contestant: str
    run_id: uuid.UUID | None = None


@dataclass
class Judgment:
    """One pair shown to the judge in one order (`position`), in one trial."""

    item: GoldenItem
    trial: int
    position: str
    a: Response
    b: Response
    key: str
    call_main: bool = True
    judge_key: None = None

    @property
    def shown(self) -> tuple[str, str]:
        """The item letters in the first and second slot."""
        return ("a", "b") if self.position == "ab" else ("b", "a")


def settled_rows(conn: psycopg.Connection, keys: list[str]) -> dict[str, tuple]:
    """key -> (run_id, output_text, verdict, status) of the settled row of each key."""
    found: dict[str, tuple] = {}
    for offset in range(0, len(keys), _KEY_CHUNK):
        for key, *row in conn.execute(
            "select idempotency_key, run_id, output_text, verdict, status from raw.eval_runs"
            " where idempotency_key = any(%s) and status in ('ok', 'parse_error')",
            (keys[offset : offset + _KEY_CHUNK],),
        ).fetchall():
            found[key] = tuple(row)
    return found
