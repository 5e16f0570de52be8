"""A simulated production stream: learners submitting exercises to a grader, day after day.

The demo and the tests need production data that behaves like the real thing, and it must
arrive the way real data does: an app calls LiteLLM, the capture callback records the call, the
background writer lands it in raw.eval_runs. So this module is such an app. It grades
submissions drawn from a grader suite (intro-python by default) with the configured model,
through `litellm.completion` on the simulated provider, with `evals.capture` installed:

- traffic spread over N simulated days with a diurnal rhythm (`started_at` from the metadata);
  earlier stages get more traffic than later ones, as in any course;
- pseudonymous learners (`subject_id`: a salted hash, never a name);
- a prompt-version rollout: from `canary_day` a share of calls uses a revised grader prompt;
- drift: `--drift STAGE:+0.15@DAY` is the simulated provider's drift scenario dated to that
  simulated day: from then on 15 % of the stage's failing verdicts turn passing (a negative
  shift turns passes into fails), so its pass rate rises by about 0.15 × (1 − pass rate);
- realistic faults from the simulator's rates (429s and 500s are retried once by the app, each
  attempt a row, as in production; malformed replies become parse errors);
- a share of graded calls is sent to human review: simulated reviewers (right about the true
  verdict most of the time, so they disagree with each other and with the model), several on
  some runs, written to raw.human_reviews.

Nothing sleeps: the simulator's time_scale is forced to 0 and latency is drawn, not waited.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from evals.llm import METADATA_KEY

if TYPE_CHECKING:
    from evals.config import Config
    from evals.golden import GoldenItem, Suite
    from evals.prompts import PromptTemplate

TOUCHPOINT = "exercise-feedback"
REVIEWERS = ("rev-ana", "rev-ben", "rev-chen", "rev-dee")
# The revised grader prompt of the rollout: one more instruction than the shipped one.
ROLLOUT_NOTE = "Name the exact line or construct a problem comes from, so the learner can find it."
_DRIFT = re.compile(r"^(?P<stage>[^:@]+):(?P<shift>[+-]?\d*\.?\d+)@(?P<day>\d+)$")
# Share of the day's calls per hour (UTC), learners study in the afternoon and evening.
_CONCURRENCY = 64
_HOURLY = (1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 7, 8, 9, 9, 8, 6, 4, 2)


class TrafficError(ValueError):
    """The simulation was asked for something impossible (unknown stage, bad drift spec...)."""


@dataclass(frozen=True)
class Drift:
    """From simulated day `day` (1-based), the simulator's pass_shift `shift` applies to `stage`."""

    stage: str
    shift: float
    day: int

    @classmethod
    def parse(cls, text: str) -> Drift:
        match = _DRIFT.match(text.strip())
        if match is None:
            raise TrafficError(f"drift {text!r}: expected STAGE:+SHIFT@DAY, e.g. loops:+0.15@11")
        shift, day = float(match["shift"]), int(match["day"])
        if not -1 <= shift <= 1 or day < 1:
            raise TrafficError(f"drift {text!r}: shift must be within [-1, 1] and day >= 1")
        return cls(match["stage"], shift, day)


@dataclass
class TrafficSummary:
    days: int = 0
    calls: int = 0
    retries: int = 0
    failed_calls: int = 0
    learners: int = 0
    reviewed_runs: int = 0
    reviews: int = 0
    reviews_waiting: int = 0  # held beside the capture spool until their runs are replayed
    by_prompt_version: Counter = field(default_factory=Counter)
    by_stage: Counter = field(default_factory=Counter)
    first_day: date | None = None
    capture_stats: dict[str, int] = field(default_factory=dict)


def _rollout_prompt(base: PromptTemplate) -> PromptTemplate:
    from evals.prompts import PromptTemplate

    marker = "Use an empty issue_tags list when nothing is wrong."
    if marker not in base.text:
        raise TrafficError(f"prompt {base.name!r} changed: the rollout variant cannot be derived")
    return PromptTemplate.from_text(
        base.name, base.text.replace(marker, f"{marker}\n{ROLLOUT_NOTE}")
    )


def _learner(seed: int, index: int) -> str:
    return "learner-" + hashlib.sha256(f"{seed}:learner:{index}".encode()).hexdigest()[:12]


def _stage_weights(stages: list[str]) -> list[float]:
    """Course funnel: each later stage keeps ~85 % of the previous stage's traffic."""
    return [0.85**position for position in range(len(stages))]


def _started_at(rng: random.Random, day: date) -> datetime:
    hour = rng.choices(range(24), weights=_HOURLY)[0]
    second = rng.randrange(3600)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(seconds=second)


def _human_label(rng: random.Random, suite: Suite, truth: str, accuracy: float) -> str:
    if rng.random() < accuracy:
        return truth
    return rng.choice([verdict for verdict in suite.verdicts if verdict != truth])


@dataclass
class _Call:
    """One planned production call, drawn up front so the stream does not depend on timing."""

    seed: int
    day_index: int
    item: GoldenItem
    started_at: datetime
    messages: list
    row: dict
    truth: dict
    labels: list[tuple[str, str, tuple[str, ...], float]]


class _Simulation:
    def __init__(
        self,
        config: Config,
        suite: Suite,
        model: str,
        seed: int,
        start: date,
        review_share: float,
        canary_day: int,
        canary_share: float,
        prompts: tuple[PromptTemplate, PromptTemplate],
    ):
        self.config = config
        self.prompts = prompts
        self.suite = suite
        self.model = model
        self.litellm_model = config.model(model).model
        self.seed = seed
        self.start = start
        self.review_share = review_share
        self.canary_day = canary_day
        self.canary_share = canary_share
        self.rng = random.Random(seed)
        self.stages = list(suite.stage_counts())
        self.items_by_stage: dict[str, list[GoldenItem]] = {}
        for item in suite.items:
            self.items_by_stage.setdefault(item.stage or "-", []).append(item)
        self.weights = _stage_weights(self.stages)
        self.summary = TrafficSummary(first_day=start)
        self.pending_reviews: list = []

    def prompt_for(self, day_index: int) -> PromptTemplate:
        stable, revised = self.prompts
        if day_index >= self.canary_day and self.rng.random() < self.canary_share:
            return revised
        return stable

    def plan(self, day_index: int, day: date, number: int, learners: int) -> _Call:
        from evals.judging import call_metadata, item_truth, render_grader

        rng, suite = self.rng, self.suite
        stage = rng.choices(self.stages, weights=self.weights)[0]
        item = rng.choice(self.items_by_stage[stage])
        subject = _learner(self.seed, rng.randrange(learners))
        rendered = render_grader(suite, item, self.prompt_for(day_index))
        row = {
            "touchpoint": TOUCHPOINT,
            "subject_id": subject,
            "stage": item.stage,
            "category": item.category,
            "suite": suite.name,
            "suite_version": suite.version,
            "item_id": item.item_id,
            "item_hash": item.item_hash,
            "rubric": item.rubric,
            "submission": item.submission,
            "prior_context": item.prior_context,
            "inputs": rendered.inputs,
            "prompt_name": rendered.prompt_name,
            "prompt_version": rendered.prompt_version,
            "model": self.model,
            "role": "grader",
            "trial": 0,
            "attributes": {"simulated": True, "sim_day": day_index},
        }
        truth = call_metadata(
            suite,
            role="grader",
            stage=item.stage,
            as_of=day.isoformat(),
            item_id=f"traffic/{self.seed}/{day.isoformat()}/{number}",
            **item_truth(item),
        )[METADATA_KEY]
        labels = self.labels(item) if rng.random() < self.review_share else []
        return _Call(
            rng.getrandbits(64),
            day_index,
            item,
            _started_at(rng, day),
            rendered.messages,
            row,
            truth,
            labels,
        )

    def labels(self, item: GoldenItem) -> list[tuple[str, str, tuple[str, ...], float]]:
        """Simulated reviewers of one run: (reviewer, verdict, issue tags, hours after the call)."""
        rng, suite = self.rng, self.suite
        count = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        labels = []
        for reviewer in rng.sample(REVIEWERS, count):
            accuracy = 0.93 if reviewer != "rev-dee" else 0.8  # one reviewer is sloppier
            verdict = _human_label(rng, suite, item.expected_verdict, accuracy)
            tags = (
                ()
                if verdict in suite.passing_verdicts
                else tuple(tag for tag in item.expected_issue_tags if rng.random() < 0.8)
            )
            labels.append((reviewer, verdict, tags, 2 + rng.random() * 40))
        return labels

    async def execute(self, litellm, call: _Call, slots) -> None:
        """Make the call (and one retry on failure, like most production code); each attempt
        is a LiteLLM call the capture callback records as its own row."""
        from evals.judging import JSON_RESPONSE_FORMAT
        from evals.reviews import Review

        rng, sim, started_at = random.Random(call.seed), self.config.simulator, call.started_at
        for attempt in (1, 2):
            run_id = uuid.UUID(int=rng.getrandbits(128), version=4)  # same seed, same rows
            latency = sim.latency_ms_median * math.exp(sim.latency_sigma * rng.gauss(0, 1))
            capture = {
                **call.row,
                "run_id": str(run_id),
                "started_at": started_at.isoformat(),
                "latency_ms": round(latency, 1),
            }
            self.summary.calls += 1
            self.summary.by_prompt_version[call.row["prompt_version"]] += 1
            self.summary.by_stage[call.item.stage] += 1
            try:
                async with slots:
                    await litellm.acompletion(
                        model=self.litellm_model,
                        messages=call.messages,
                        response_format=JSON_RESPONSE_FORMAT,
                        max_retries=0,
                        metadata={
                            METADATA_KEY: {**call.truth, "attempt": attempt, "capture": capture}
                        },
                    )
            except Exception:
                self.summary.failed_calls += 1
                if attempt == 1:
                    self.summary.retries += 1
                    started_at += timedelta(seconds=1 + rng.random() * 2)
                    continue
                return
            break
        if call.labels:
            self.summary.reviewed_runs += 1
        for reviewer, verdict, tags, hours in call.labels:
            self.pending_reviews.append(
                Review(
                    run_id,
                    reviewer,
                    verdict,
                    None,
                    tags,
                    None,
                    started_at + timedelta(hours=hours),
                    source="simulated",
                )
            )


def plan_traffic(
    config: Config,
    suite: Suite,
    model: str,
    *,
    days: int,
    per_day: int,
    start: date,
    drift: list[Drift],
    seed: int | None,
    review_share: float,
    canary_day: int,
    canary_share: float,
) -> tuple[_Simulation, list[_Call]]:
    """Every call of the simulated days, drawn up front, and the simulation that executes them
    (its config's simulator has the drift dated and no sleeping). `simulate_traffic` runs the
    plan through LiteLLM and capture; the detector calibration replays the same plan against
    the simulated provider directly, which is what makes 30 demo start dates affordable."""
    from evals.judging import RUBRIC_GRADER
    from evals.prompts import load_prompt

    config = _dated_config(config, drift, start)
    stable = load_prompt(RUBRIC_GRADER)
    seed = config.simulator.seed if seed is None else seed
    simulation = _Simulation(
        config,
        suite,
        model,
        seed,
        start,
        review_share,
        canary_day,
        canary_share,
        prompts=(stable, _rollout_prompt(stable)),
    )
    learners = max(20, per_day * min(days, 7) // 5)
    simulation.summary.learners = learners
    number, plan = 0, []
    for day_index in range(1, days + 1):
        day = start + timedelta(days=day_index - 1)
        volume = max(1, round(per_day * simulation.rng.uniform(0.85, 1.15)))
        for _ in range(volume):
            number += 1
            plan.append(simulation.plan(day_index, day, number, learners))
    return simulation, plan


def _dated_config(config: Config, drift: list[Drift], start: date) -> Config:
    """The config with each drift dated from `start` and the simulator not sleeping."""
    simulator = type(config.simulator).model_validate(
        {
            **config.simulator.model_dump(),
            "time_scale": 0.0,  # simulated days must not take days
            "drift": [
                *config.simulator.model_dump()["drift"],
                *(
                    {
                        "stage": d.stage,
                        "start": start + timedelta(days=d.day - 1),
                        "pass_shift": d.shift,
                    }
                    for d in drift
                ),
            ],
        }
    )
    return config.model_copy(update={"simulator": simulator})


async def _await_callbacks(writer, calls: int, timeout_s: float = 60.0) -> None:
    """Wait until every call made has reached the capture writer (before flushing it)."""
    deadline = time.monotonic() + timeout_s
    while writer.stats.submitted < calls:
        if time.monotonic() > deadline:
            raise TrafficError(
                f"only {writer.stats.submitted} of {calls} calls reached the capture writer"
            )
        await asyncio.sleep(0.01)


def simulate_traffic(
    config: Config,
    *,
    days: int,
    per_day: int,
    start: date | None = None,
    drift: list[Drift] | None = None,
    suite_name: str = "intro-python",
    model: str | None = None,
    seed: int | None = None,
    review_share: float = 0.06,
    canary_day: int = 3,
    canary_share: float = 0.2,
    progress=None,
) -> TrafficSummary:
    """Simulate `days` × ~`per_day` graded submissions ending yesterday (or from `start`).

    Rows go through the real capture path; returns what was generated. `progress(day_index)`
    is called after each simulated day.
    """
    import litellm

    from evals import warehouse
    from evals.golden import store_suite
    from evals.prompts import ensure_prompt_version
    from evals.simulated import register

    drift = drift or []
    suite, model = _traffic_suite(
        config, model, suite_name, days=days, per_day=per_day, drift=drift
    )
    start = start or (datetime.now(UTC).date() - timedelta(days=days))
    simulation, plan = plan_traffic(
        config,
        suite,
        model,
        days=days,
        per_day=per_day,
        start=start,
        drift=drift,
        seed=seed,
        review_share=review_share,
        canary_day=canary_day,
        canary_share=canary_share,
    )
    config = simulation.config
    register(config)
    litellm.suppress_debug_info = True

    with warehouse.connect(autocommit=True) as conn:
        store_suite(conn, suite)
        for prompt in simulation.prompts:
            ensure_prompt_version(conn, prompt.name, prompt.version, prompt.text)

    _run_through_capture(litellm, simulation, plan, days, progress)
    simulation.summary.reviews = _write_present_reviews(simulation)
    simulation.summary.days = days
    return simulation.summary


def _traffic_suite(
    config: Config,
    model: str | None,
    suite_name: str,
    *,
    days: int,
    per_day: int,
    drift: list[Drift],
) -> tuple[Suite, str]:
    """(the grader suite, the simulated model), or TrafficError naming what is wrong."""
    from evals.golden import suites_from_config
    from evals.simulated import simulates

    if days < 1 or per_day < 1:
        raise TrafficError("--days and --per-day must be at least 1")
    model = model or config.default_model
    if model is None:
        raise TrafficError("no model: set default_model in evalhouse.yaml or pass --model")
    if not simulates(config.model(model).model):
        raise TrafficError(
            f"model {model!r} is not simulated: traffic simulation only uses simulated models"
        )
    suites = suites_from_config(config)
    if suite_name not in suites or suites[suite_name].kind != "grader":
        raise TrafficError(f"suite {suite_name!r} is not a configured grader suite")
    suite = suites[suite_name]
    unknown = {d.stage for d in drift} - set(suite.stage_counts())
    if unknown:
        raise TrafficError(
            f"drift names stages {sorted(unknown)} that suite {suite.name} "
            f"does not have ({', '.join(suite.stage_counts())})"
        )
    return suite, model


def _run_through_capture(
    litellm, simulation: _Simulation, plan: list[_Call], days: int, progress
) -> None:
    """Execute the plan day by day through LiteLLM with capture installed, then drain the
    writer; its counts go into the summary."""
    from evals import capture

    config = simulation.config

    async def run_all() -> None:
        slots = asyncio.Semaphore(_CONCURRENCY)
        try:
            for day_index in range(1, days + 1):
                await asyncio.gather(
                    *(
                        simulation.execute(litellm, call, slots)
                        for call in plan
                        if call.day_index == day_index
                    )
                )
                if progress is not None:
                    progress(day_index)
            # LiteLLM logs each call from a task of its own, a little after the call returns.
            await _await_callbacks(writer, already + simulation.summary.calls)
        finally:
            await litellm.close_litellm_async_clients()

    writer = capture.start(config)
    already = writer.stats.submitted
    capture.install(config)
    try:
        asyncio.run(run_all())
        if not capture.flush(120):
            raise TrafficError("the capture writer did not drain within 120 s")
        simulation.summary.capture_stats = writer.stats_dict()
    finally:
        capture.shutdown()


def _write_present_reviews(simulation: _Simulation) -> int:
    """Store the simulated human reviews of the runs that reached the warehouse; those of runs
    still in the capture spool wait beside it and are stored when the spool replays."""
    import psycopg

    from evals import warehouse
    from evals.capture import spool_dir
    from evals.capture.spool import Spool
    from evals.reviews import write_reviews_of_present_runs

    try:
        with warehouse.connect(autocommit=True) as conn:
            stored, waiting = write_reviews_of_present_runs(conn, simulation.pending_reviews)
    except psycopg.OperationalError:  # the warehouse went away with the last rows
        stored, waiting = 0, simulation.pending_reviews
    Spool(spool_dir(simulation.config)).hold_reviews(waiting)
    simulation.summary.reviews_waiting = len(waiting)
    return stored
