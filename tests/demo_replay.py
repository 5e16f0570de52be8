"""The demo's production traffic, replayed fast: the same plan, verdicts, latencies and reviews as
`evalhouse demo`, without LiteLLM, capture, Postgres or dbt.

`evals.traffic.plan_traffic` draws the demo's calls (volumes, stage funnel, learners, prompt
rollout, reviewers); `_Simulation.execute` runs each one with its retry, against a stand-in for
the litellm module that asks the simulated provider (`evalhouse-sim`) for its reply directly.
The resulting rows are aggregated into the rows the drift checks' queries read from the marts
(one line per aggregate below: sums, a p95, the human-consensus majority), and the checks' own
detect functions run on them night by night. A real demo takes minutes per start date; this takes
seconds, which is what lets the calibration test cover 30 start dates.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import litellm
import numpy as np

from evals import drift
from evals.cli.demo import DAYS, DRIFT_DAY, DRIFT_SHIFT, DRIFT_STAGE
from evals.config import Config
from evals.golden import suites_from_config
from evals.judging import parse_grade
from evals.llm import METADATA_KEY
from evals.simulated import PROVIDER, SimulatedProvider
from evals.traffic import _CONCURRENCY, Drift, plan_traffic, simulate_traffic
from orchestration.defs.drift import checks

TRAFFIC_DEFAULTS = inspect.signature(simulate_traffic).parameters  # what the demo leaves default
DEMO_PER_DAY = 600  # `evalhouse demo --per-day` default


def is_the_injected_drift(kind: str, subject: str) -> bool:
    """A pass-rate shift on the drifted stage, in whichever of its epochs (the demo's prompt
    canary runs beside the incumbent prompt)."""
    return kind == "pass_rate_shift" and subject.split()[0] == f"stage={DRIFT_STAGE}"


class _DirectProvider:
    """Stands in for the litellm module in `_Simulation.execute`: the simulated provider's
    reply without LiteLLM's machinery, each attempt kept as the row capture would land."""

    def __init__(self, config: Config, suite) -> None:
        self.provider = SimulatedProvider(config.simulator)
        self.suite = suite
        self.rows: list[dict] = []

    async def acompletion(self, *, model, messages, response_format, metadata, **_) -> None:
        name = model.removeprefix(f"{PROVIDER}/")
        reply = self.provider._reply(
            name, messages, {"response_format": response_format}, {"metadata": metadata}
        )
        captured = metadata[METADATA_KEY]["capture"]
        row = {
            "run_id": captured["run_id"],
            "day": date.fromisoformat(captured["started_at"][:10]),
            "stage": captured["stage"],
            "prompt_version": captured["prompt_version"],
            "suite": captured["suite"],
            "suite_version": captured["suite_version"],
            "latency_ms": captured["latency_ms"],
            "status": "error",
            "passed": None,
            "verdict": None,
            "cost_usd": 0.0,
        }
        self.rows.append(row)
        response = self.provider._finish(reply, name, messages, litellm.ModelResponse())
        grade = parse_grade(response.choices[0].message.content, self.suite)
        sim = self.provider.sim
        row.update(
            status=grade.status,
            passed=grade.passed,
            verdict=grade.verdict,
            input_tokens=response.usage.prompt_tokens,
            output_tokens=response.usage.completion_tokens,
            cost_usd=response.usage.prompt_tokens * sim.input_cost_per_token
            + response.usage.completion_tokens * sim.output_cost_per_token,
        )


@dataclass
class DemoMarts:
    """What the drift checks' queries return for one replayed demo."""

    start: date
    stage: list[dict]
    agreement: list[dict]
    cost: list[dict]
    latency: list[dict]
    calls: int
    rows: list[dict] = field(repr=False, default_factory=list)
    """Every captured attempt (day, stage, status, latency, cost...): the run log's rows."""


def replay_demo(
    config: Config,
    start: date,
    *,
    per_day: int = DEMO_PER_DAY,
    days: int = DAYS,
    seed: int | None = None,
) -> DemoMarts:
    """The demo's production traffic from `start`, drift included, as the checks' mart rows;
    `seed` other than the config's draws other traffic (the demo always uses the config's)."""
    suite = suites_from_config(config)[TRAFFIC_DEFAULTS["suite_name"].default]
    simulation, plan = plan_traffic(
        config,
        suite,
        config.default_model,
        days=days,
        per_day=per_day,
        start=start,
        drift=[Drift(DRIFT_STAGE, DRIFT_SHIFT, DRIFT_DAY)],
        seed=seed,
        review_share=TRAFFIC_DEFAULTS["review_share"].default,
        canary_day=TRAFFIC_DEFAULTS["canary_day"].default,
        canary_share=TRAFFIC_DEFAULTS["canary_share"].default,
    )
    direct = _DirectProvider(simulation.config, suite)

    async def run_all() -> None:
        slots = asyncio.Semaphore(_CONCURRENCY)
        await asyncio.gather(*(simulation.execute(direct, call, slots) for call in plan))

    asyncio.run(run_all())
    rows = direct.rows
    return DemoMarts(
        start,
        _stage_rows(rows),
        _agreement_rows(rows, simulation.pending_reviews),
        _cost_rows(rows),
        _latency_rows(rows),
        len(rows),
        rows,
    )


EPOCH = ("prompt_version", "suite", "suite_version")
"""What a demo row's comparability epoch varies in (the model is the demo's one grader)."""


def _epoch(row: dict) -> tuple:
    return tuple(row[column] for column in EPOCH)


def _subject(row: dict) -> dict:
    return {"model": "tutor-small", "source": "production", "role": "grader", **row}


def _keyed_rows(totals: dict[tuple, dict], names: tuple[str, ...]) -> list[dict]:
    """Mart rows from {(day, ..., *epoch): columns}, one per key, in key order."""
    return [
        _subject({**dict(zip((*names, *EPOCH), key, strict=True)), **columns})
        for key, columns in sorted(totals.items(), key=lambda item: str(item[0]))
    ]


def _stage_rows(rows: list[dict]) -> list[dict]:
    """fct_stage_daily, production graders: settled verdicts and passes per day, stage and
    epoch (the demo's prompt canary is a second series, as stage_daily.sql reads it); a group
    whose calls all failed is a row with no verdicts, as in the mart."""
    totals: dict[tuple, dict] = defaultdict(lambda: {"n": 0, "passes": 0})
    for row in rows:
        counts = totals[(row["day"], row["stage"], *_epoch(row))]
        if row["status"] == "ok" and row["passed"] is not None:
            counts["n"] += 1
            counts["passes"] += bool(row["passed"])
    return _keyed_rows(totals, ("day", "stage"))


def _cost_rows(rows: list[dict]) -> list[dict]:
    """fct_model_cost_daily: cost per call over every attempt of the day, per epoch."""
    by_key: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        by_key[(row["day"], *_epoch(row))].append(row["cost_usd"])
    totals = {key: {"cost_per_call": sum(v) / len(v)} for key, v in by_key.items()}
    return _keyed_rows(totals, ("day",))


def _latency_rows(rows: list[dict]) -> list[dict]:
    """fct_trend_daily p95 of settled calls (ok or parse error) per day and epoch."""
    by_key: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        if row["status"] != "error":
            by_key[(row["day"], *_epoch(row))].append(row["latency_ms"])
    totals = {key: {"latency_p95_ms": float(np.percentile(v, 95))} for key, v in by_key.items()}
    return _keyed_rows(totals, ("day",))


def _agreement_rows(rows: list[dict], reviews) -> list[dict]:
    """fct_verdict_agreement_weekly vs the human consensus: runs with a strict majority of
    reviewers, a parse error never agreeing; weeks start on Monday; per epoch."""
    labels: dict[str, list[str]] = defaultdict(list)
    for review in reviews:
        labels[str(review.run_id)].append(review.verdict)
    totals: dict[tuple, dict] = defaultdict(lambda: {"n": 0, "agree": 0})
    for row in rows:
        votes = labels.get(row["run_id"])
        if not votes or row["status"] == "error":
            continue
        top, n_top = Counter(votes).most_common(1)[0]
        if n_top * 2 <= len(votes):
            continue
        counts = totals[(row["day"] - timedelta(days=row["day"].weekday()), *_epoch(row))]
        counts["n"] += 1
        counts["agree"] += row["status"] == "ok" and row["verdict"] == top
    return _keyed_rows(totals, ("day",))


@dataclass
class DemoOutcome:
    """The alerts one demo's checks raise, as incidents: (night, kind, subject) openings."""

    start: date
    openings: list[tuple[date, str, str]] = field(default_factory=list)

    @property
    def drift_night(self) -> date:
        return self.start + timedelta(days=DRIFT_DAY - 1)

    @property
    def caught_on(self) -> date | None:
        """The night the injected drift opened its alert (on or after the drift's first day)."""
        return min(
            (
                night
                for night, *key in self.openings
                if is_the_injected_drift(*key) and night >= self.drift_night
            ),
            default=None,
        )

    @property
    def false_alerts(self) -> list[tuple[date, str, str]]:
        return [
            o
            for o in self.openings
            if not (is_the_injected_drift(*o[1:]) and o[0] >= self.drift_night)
        ]


def demo_alerts(config: Config, marts: DemoMarts, days: int = DAYS) -> DemoOutcome:
    """Run the checks' detect functions over each night as the demo's single-run backfill does,
    and keep the alerts opened (a finding on a subject already firing renews it; a quiet night
    resolves it: evals.alerts)."""
    detectors = [
        (checks._stage_findings, marts.stage),
        (checks._version_change_findings, marts.stage),
        (checks._agreement_findings, marts.agreement),
        (checks._agreement_version_change_findings, marts.agreement),
        (checks._spike_findings("cost_per_call", drift.detect_cost_spike), marts.cost),
        (checks._cost_version_change_findings, marts.cost),
        (checks._spike_findings("latency_p95_ms", drift.detect_latency_spike), marts.latency),
        (checks._latency_version_change_findings, marts.latency),
    ]
    outcome, firing = DemoOutcome(marts.start), set()
    for offset in range(days):
        night = marts.start + timedelta(days=offset)
        found = {
            (f.kind, f.subject) for detect, rows in detectors for f in detect(rows, config, night)
        }
        outcome.openings.extend((night, *key) for key in sorted(found - firing))
        firing = found
    return outcome
