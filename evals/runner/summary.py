"""What a run did (this invocation) and where its batch stands (all invocations)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from evals.runlog import RunRecord
    from evals.runner.context import RunContext


@dataclass
class RunSummary:
    """What a run did (this invocation) and where the batch stands (all invocations)."""

    suite: str
    suite_version: str
    kind: str
    model: str
    judge: str | None
    batch_key: str
    planned_calls: int
    skipped_calls: int
    batch_id: str | None = None  # the evaluation-run record (raw.eval_batches)
    calls: int = 0
    calls_elsewhere: int = 0  # calls of this run's plan a concurrent run made
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    unsettled_calls: int = 0
    scored: int = 0
    correct: int = 0
    processes: int = 1  # worker processes that made the calls (1: this one)
    lost_processes: int = 0  # worker processes that died mid-run (their units stay unsettled)
    by_stage: dict[str, tuple[int, int]] = field(default_factory=dict)  # stage -> (correct, n)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    def latency_ms(self, quantile: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[
            round(quantile * 100) - 1
        ]

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "ok")

    def count(self, record: RunRecord) -> None:
        """Add one finished call (latency only of settled calls: failures time out)."""
        self.calls += 1
        self.statuses[record.status] += 1
        if record.status in ("ok", "parse_error") and record.latency_ms is not None:
            self.latencies_ms.append(record.latency_ms)
        self.input_tokens += record.input_tokens or 0
        self.output_tokens += record.output_tokens or 0
        self.cost_usd += record.cost_usd or 0.0

    def blank(self) -> RunSummary:
        """This run's labels with nothing tallied: a worker process's own tally."""
        return RunSummary(
            suite=self.suite,
            suite_version=self.suite_version,
            kind=self.kind,
            model=self.model,
            judge=self.judge,
            batch_key=self.batch_key,
            planned_calls=self.planned_calls,
            skipped_calls=self.skipped_calls,
            batch_id=self.batch_id,
        )

    def add(self, part: RunSummary) -> None:
        """Add what one worker process of this run did (evals.runner.processes)."""
        self.calls += part.calls
        self.calls_elsewhere += part.calls_elsewhere
        self.statuses.update(part.statuses)
        self.latencies_ms += part.latencies_ms
        self.input_tokens += part.input_tokens
        self.output_tokens += part.output_tokens
        self.cost_usd += part.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "suite_version": self.suite_version,
            "kind": self.kind,
            "model": self.model,
            "judge": self.judge,
            "batch_key": self.batch_key,
            "batch_id": self.batch_id,
            "planned_calls": self.planned_calls,
            "skipped_calls": self.skipped_calls,
            "calls": self.calls,
            "calls_elsewhere": self.calls_elsewhere,
            "statuses": dict(self.statuses),
            "unsettled_calls": self.unsettled_calls,
            "accuracy": self.accuracy,
            "scored": self.scored,
            "by_stage": {s: {"correct": c, "n": n} for s, (c, n) in self.by_stage.items()},
            "latency_p50_ms": self.latency_ms(0.5),
            "latency_p95_ms": self.latency_ms(0.95),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "elapsed_s": self.elapsed_s,
            "processes": self.processes,
            "lost_processes": self.lost_processes,
        }


def batch_accuracy(conn: psycopg.Connection, run: RunContext, summary: RunSummary) -> None:
    """Accuracy over the whole logical batch (earlier invocations included), per stage.

    Golden outcomes as the warehouse defines them (evals.golden.outcomes): a judged answer
    counts by its judge's verdict; a parse error or an answer not yet judged counts as wrong.
    """
    from evals.golden.outcomes import ensure_outcomes_view, outcomes_view

    ensure_outcomes_view(conn)
    rows = conn.execute(
        "select coalesce(stage, '-'), count(*) filter (where is_correct), count(*)"
        f" from {outcomes_view()} where batch_id = %s and suite = %s and suite_version = %s"
        " and model = %s and prompt_version = %s group by 1 order by 1",
        (run.batch_key, run.suite.name, run.suite.version, run.model, run.prompts["main"].version),
    ).fetchall()
    summary.by_stage = {stage: (correct, n) for stage, correct, n in rows}
    summary.correct = sum(c for c, _ in summary.by_stage.values())
    summary.scored = sum(n for _, n in summary.by_stage.values())
