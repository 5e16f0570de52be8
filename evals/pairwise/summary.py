"""What a pairwise run reports: its calls, and the preferences of the whole batch.

Counted over every settled judgment of the plan (earlier invocations included), in the item's
own labelling: per contestant wins / ties / losses, parse errors apart (never scored), and per
pair judged in both orders whether the two verdicts agree (consistency) and, when they do not,
whether the judge followed the first slot both times (the position bias the marts estimate).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.pairwise.units import Judgment
    from evals.runner.summary import RunSummary


@dataclass
class PairwiseSummary:
    """A pairwise run: `calls` counts this invocation's calls as a RunSummary does."""

    calls: RunSummary
    judgments_planned: int = 0
    judgments_settled: int = 0
    parse_errors: int = 0
    wins: Counter = field(default_factory=Counter)  # contestant -> judgments it won
    ties: Counter = field(default_factory=Counter)
    losses: Counter = field(default_factory=Counter)
    pairs_both_orders: int = 0
    consistent_pairs: int = 0
    first_slot_pairs: int = 0  # inconsistent pairs where both orders named the first slot

    @property
    def consistency(self) -> float | None:
        return self.consistent_pairs / self.pairs_both_orders if self.pairs_both_orders else None

    def tally(self, judgments: list[Judgment], settled: dict[str, tuple]) -> None:
        """Count the settled judgments (key -> (run_id, text, verdict, status))."""
        by_pair: dict[tuple[str, int], dict[str, str]] = {}
        for unit in judgments:
            row = settled.get(unit.key)
            if row is None:
                continue
            self.judgments_settled += 1
            verdict = row[2]
            if verdict is None:
                self.parse_errors += 1
                continue
            a, b = unit.a.contestant, unit.b.contestant
            if verdict == "tie":
                self.ties[a] += 1
                self.ties[b] += 1
            else:
                winner, loser = (a, b) if verdict == "a" else (b, a)
                self.wins[winner] += 1
                self.losses[loser] += 1
            by_pair.setdefault((unit.item.item_id, unit.trial), {})[unit.position] = verdict
        for orders in by_pair.values():
            if len(orders) == 2:
                self.pairs_both_orders += 1
                if orders["ab"] == orders["ba"]:
                    self.consistent_pairs += 1
                elif (orders["ab"], orders["ba"]) == ("a", "b"):  # the first slot both times
                    self.first_slot_pairs += 1

    def contestants(self) -> list[str]:
        return sorted(set(self.wins) | set(self.ties) | set(self.losses))

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.calls.as_dict(),
            "judgments_planned": self.judgments_planned,
            "judgments_settled": self.judgments_settled,
            "parse_errors": self.parse_errors,
            "contestants": {
                name: {
                    "wins": self.wins[name],
                    "ties": self.ties[name],
                    "losses": self.losses[name],
                }
                for name in self.contestants()
            },
            "pairs_both_orders": self.pairs_both_orders,
            "consistent_pairs": self.consistent_pairs,
            "consistency": self.consistency,
            "first_slot_pairs": self.first_slot_pairs,
        }


def render_pairwise(summary: PairwiseSummary, console) -> None:
    """The closing summary: the run's calls, then preferences per contestant and consistency."""
    from rich.table import Table

    calls = summary.calls
    head = Table(
        title=f"{calls.suite}@{calls.suite_version} pairwise (judge {calls.judge})",
        show_header=False,
    )
    consistency = summary.consistency
    for name, value in (
        ("batch", f"{calls.batch_key} (evaluation run /batches/{calls.batch_id})"),
        (
            "calls",
            f"{calls.calls} made, {calls.skipped_calls} already settled, "
            f"{calls.planned_calls} planned",
        ),
        ("by status", ", ".join(f"{s} {n}" for s, n in sorted(calls.statuses.items())) or "-"),
        ("still unsettled", str(calls.unsettled_calls)),
        (
            "judgments",
            f"{summary.judgments_settled} of {summary.judgments_planned} settled,"
            f" {summary.parse_errors} unreadable (not counted)",
        ),
        (
            "consistency",
            f"{consistency:.1%} of {summary.pairs_both_orders} pairs judged in both orders"
            f" ({summary.first_slot_pairs} inconsistent pairs followed the first slot)"
            if consistency is not None
            else "-",
        ),
        ("cost", f"${calls.cost_usd:.4f}"),
        ("elapsed", f"{calls.elapsed_s:.1f} s"),
    ):
        head.add_row(name, value)
    console.print(head)
    table = Table(title="preferences (whole batch, every judgment in the item's labelling)")
    for column in ("contestant", "wins", "ties", "losses", "win rate (ties half)"):
        table.add_column(column, justify="left" if column == "contestant" else "right")
    for name in summary.contestants():
        wins, ties, losses = summary.wins[name], summary.ties[name], summary.losses[name]
        n = wins + ties + losses
        table.add_row(
            name, str(wins), str(ties), str(losses), f"{(wins + ties / 2) / n:.1%}" if n else "-"
        )
    console.print(table)
