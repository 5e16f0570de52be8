"""The marts are right: a varied run log goes through `dbt build` (a full build, then an
incremental one), and every mart is recomputed independently with pandas / statsmodels.

One warehouse and two dbt builds serve the whole module: dbt start-up is what costs here.
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from evals.batches import BatchSpec, open_batch
from evals.config import Config, DriftConfig, StageBand
from evals.dbt import dbt_env, run_dbt
from evals.marts import load_query
from evals.runlog import RunRecord, idempotency_key, write_runs

TOL = 1e-9
FIRST_DAY = date(2026, 10, 19)  # a Monday: the log spans three full weeks
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(21)]
STAGES = ["variables", "loops", "functions", "classes"]
VERDICTS = ["pass", "revise", "fail"]
TAGS = ["off_by_one", "naming", "syntax", "logic", "style"]
BASELINE_DAYS = 5
BACKFILLED, BACKFILL_LAG = {2, 8}, 3  # nights whose golden batch ran days later (a backfill)
CONFIG = Config(
    drift=DriftConfig(
        baseline_days=BASELINE_DAYS,
        default_band=StageBand(too_easy_above=0.8, stalling_below=0.3),
        stage_bands={"loops": StageBand(too_easy_above=0.6, stalling_below=0.45)},
    )
)
NO_KEY = "∅"
LOADED = datetime(2026, 11, 10, 6, tzinfo=UTC)  # every load and review time the test sets itself


# -- a varied run log -------------------------------------------------------------------------


class RunLog:
    """Builds RunRecords and reviews with every case the marts must count right.

    Ids come from a generator of their own, so the warehouse is the same on every run (the mart
    checksums depend on it) and the rows drawn do not depend on how many ids were taken.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = random.Random(f"ids-{seed}")
        self.runs: list[RunRecord] = []
        self.reviews: list[tuple] = []

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.ids.getrandbits(128), version=4)

    def at(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=self.rng.randrange(86_400)
        )

    def call(self, *, key_parts: tuple, day: date, settle: bool = True, **fields) -> RunRecord:
        """One logical call: maybe some failed attempts first, then (if settle) its settled row."""
        rng = self.rng
        key = idempotency_key(*key_parts)
        started = self.at(day)
        for _ in range(rng.choice([0] * 8 + [1, 2])):
            self.runs.append(
                RunRecord(
                    run_id=self.new_id(),
                    idempotency_key=key,
                    started_at=started,
                    status=rng.choice(["error", "timeout"]),
                    error_class="RateLimitError",
                    latency_ms=rng.uniform(50, 3000),
                    input_tokens=rng.choice([None, 0]),
                    cost_usd=rng.choice([None, 0.0]),
                    **{
                        k: v
                        for k, v in fields.items()
                        if k not in ("verdict", "passed", "score", "issue_tags")
                    },
                )
            )
            started += timedelta(seconds=2)
        if not settle:
            return self.runs[-1]
        status = "parse_error" if rng.random() < 0.06 else "ok"
        if status == "parse_error":
            fields = {**fields, "verdict": None, "passed": None, "score": None, "issue_tags": []}
        record = RunRecord(
            run_id=self.new_id(),
            idempotency_key=key,
            started_at=started,
            status=status,
            latency_ms=None if rng.random() < 0.05 else rng.lognormvariate(6.5, 0.5),
            input_tokens=rng.randrange(200, 2000),
            output_tokens=rng.randrange(10, 400),
            cost_usd=rng.uniform(0, 0.01),
            **fields,
        )
        self.runs.append(record)
        return record

    def graded(self, expected: str | None, accuracy: float) -> dict:
        rng = self.rng
        verdict = expected if expected and rng.random() < accuracy else rng.choice(VERDICTS)
        tags = rng.sample(TAGS, rng.choice([0, 0, 1, 2]))
        if tags and rng.random() < 0.2:
            tags = [*tags, tags[0]]  # a model repeating a tag counts once
        return {
            "verdict": verdict,
            "passed": verdict == "pass",
            "issue_tags": tags,
            "score": rng.choice([None, round(rng.uniform(0, 10), 2)]),
        }

    def review(self, run: RunRecord, n_reviewers: int, truth: str, panel: str = "reviewer") -> None:
        for i in range(n_reviewers):
            label = truth if self.rng.random() < 0.7 else self.rng.choice(VERDICTS)
            if self.rng.random() < 0.05:
                label = None  # a reviewer who only left notes
            self.reviews.append((self.new_id(), run.run_id, f"{panel}-{i}", label))


def golden_items() -> list[tuple]:
    """(suite, suite_version, item_id, stage, category, expected) rows."""
    rng = random.Random(3)
    items = []
    for version, count in (("v1", 12), ("v2", 15)):
        for i in range(count):
            expected = rng.choice(VERDICTS) if version == "v1" or i % 3 else "pass"
            category = None if i == 0 else f"c{i % 2}"
            items.append(
                (
                    "intro-python",
                    version,
                    f"item-{i}",
                    STAGES[i % 4],
                    category,
                    {"verdict": expected},
                )
            )
    items += [("general-qa", "q1", f"q-{i}", None, "facts", {"answer": "42"}) for i in range(6)]
    return items


def first_log(log: RunLog, days: list[date]) -> None:
    """Golden batches every other day, the answer suite every third; production, replays daily."""
    items = golden_items()
    for n, day in enumerate(days):
        prompt = "gp1" if n < 10 else "gp2"
        if n % 2 == 0:
            _golden_batch(log, items, n, day, prompt)
        _production_day(log, n, day, prompt)
        if n % 3 == 0:
            _answer_suite_day(log, items, day)
        for i in range(3):
            log.call(
                key_parts=("replay", day, i),
                day=day,
                source=log.rng.choice(["replay", "import"]),
                role="candidate",
                model="tutor-large",
                prompt_name="grader",
                prompt_version=prompt,
                **log.graded(None, 0),
            )


def _golden_batch(log: RunLog, items: list[tuple], n: int, day: date, prompt: str) -> None:
    """Both models on suite v1, later v2 (v0 was never loaded: no coverage), some backfilled."""
    rng = log.rng
    version = "v1" if n < 8 else "v2"
    batch = f"golden:{day}" if n != 6 else f"ci-{day}"
    suite_items = [i for i in items if i[0] == "intro-python" and i[1] == version]
    if n == 4:
        suite_items = [
            ("intro-python", "v0", f"item-{i}", "loops", "c1", {"verdict": "fail"})
            for i in range(3)
        ]
    for model, accuracy in (("tutor-small", 0.7), ("tutor-large", 0.9)):
        trials = 2 if model == "tutor-small" and n % 4 == 0 else 1
        for suite, sv, item_id, stage, category, expected in suite_items:
            if rng.random() < 0.1:
                continue  # not every item judged: coverage < 1
            for trial in range(trials):
                source = "ci" if n == 6 else "golden"
                ran = day + timedelta(days=BACKFILL_LAG) if n in BACKFILLED else day
                candidate = log.call(
                    key_parts=(batch, item_id, "candidate", model, prompt, trial),
                    day=ran,
                    source=source,
                    role="candidate",
                    model=model,
                    suite=suite,
                    suite_version=sv,
                    item_id=item_id,
                    stage=stage,
                    category=category,
                    prompt_name="grader",
                    prompt_version=prompt,
                    batch_id=batch,
                    trial=trial,
                    expected_verdict=expected["verdict"] if rng.random() > 0.05 else None,
                    **log.graded(expected["verdict"], accuracy),
                )
                if rng.random() < 0.3:
                    log.review(candidate, rng.randint(1, 4), expected["verdict"])
                _reference_judge(log, candidate, ran, expected["verdict"])


def _reference_judge(log: RunLog, candidate: RunRecord, ran: date, expected: str) -> None:
    """The reference judge twice per golden candidate call: positions swapped."""
    for j_trial, position in enumerate(("original", "swapped")):
        log.call(
            key_parts=(candidate.batch_id, candidate.item_id, "judge", candidate.run_id, j_trial),
            day=ran,
            source=candidate.source,
            role="judge",
            model="judge",
            suite=candidate.suite,
            suite_version=candidate.suite_version,
            item_id=candidate.item_id,
            stage=candidate.stage,
            category=candidate.category,
            prompt_name="judge",
            prompt_version="jp1",
            batch_id=candidate.batch_id,
            parent_run_id=candidate.run_id,
            trial=j_trial,
            attributes={"position": position},
            expected_verdict=expected,
            **log.graded(expected, 0.85),
        )


def _production_day(log: RunLog, n: int, day: date, prompt: str) -> None:
    """Production traffic and its judged, partly human-reviewed sample."""
    rng = log.rng
    for i in range(rng.randint(25, 45)):
        stage = rng.choice(STAGES)
        # a stage that gets easy in the last week: flags too_easy / vs baseline
        easy = stage == "loops" and n > 14
        accuracy = 0.95 if easy else 0.6
        truth = "pass" if rng.random() < (0.9 if easy else 0.45) else rng.choice(VERDICTS[1:])
        prod = log.call(
            key_parts=("prod", day, i),
            day=day,
            settle=rng.random() > 0.02,
            source="production",
            role="candidate",
            model="tutor-small",
            stage=stage,
            prompt_name="grader",
            prompt_version=prompt,
            touchpoint="hints",
            item_id=None if i % 5 else f"p-{i}",
            **log.graded(truth, accuracy),
        )
        if prod.status in ("ok", "parse_error") and rng.random() < 0.3:
            _production_sample(log, prod, stage, day, truth)


def _production_sample(log: RunLog, prod: RunRecord, stage: str, day: date, truth: str) -> None:
    """Judges grade the production call, once or twice, the next day; half are reviewed too."""
    rng = log.rng
    for trial in range(rng.choice([1, 1, 2])):
        sample = log.call(
            key_parts=("sample", prod.run_id, trial),
            day=day + timedelta(days=1),
            source="production_sample",
            role="grader",
            model=rng.choice(["judge", "judge-b"]),
            stage=stage,
            prompt_name="judge",
            prompt_version="jp1",
            parent_run_id=prod.run_id,
            trial=trial,
            batch_id=f"sample:{day}",
            sample_weight=rng.choice([1.0, 4.0, 8.0]),
            **log.graded(truth, 0.8),
        )
        if rng.random() < 0.5:
            log.review(sample, rng.randint(1, 4), truth)


def _answer_suite_day(log: RunLog, items: list[tuple], day: date) -> None:
    """The answer suite: candidates answer, the judge grades twice, some answers stay unjudged.

    A candidate has no verdict of its own: its row carries the item's expected passing verdict,
    as the runner writes it. An unjudged answer is one whose two judge calls both fail.
    """
    rng = log.rng
    for suite, sv, item_id, _, category, _ in (i for i in items if i[0] == "general-qa"):
        answer = log.call(
            key_parts=("qa", day, item_id),
            day=day,
            source="golden",
            role="candidate",
            model="tutor-large",
            suite=suite,
            suite_version=sv,
            item_id=item_id,
            category=category,
            prompt_name="answer",
            prompt_version="ap1",
            batch_id=f"golden:{day}",
            expected_verdict="pass",
        )
        judged = rng.random() > 0.15
        for trial in range(2):
            log.call(
                key_parts=("qa-judge", answer.run_id, trial),
                day=day,
                source="golden",
                role="judge",
                model="judge",
                suite=suite,
                suite_version=sv,
                item_id=item_id,
                category=category,
                prompt_name="judge",
                prompt_version="jp1",
                parent_run_id=answer.run_id,
                trial=trial,
                batch_id=f"golden:{day}",
                expected_verdict="pass",
                settle=judged,
                **log.graded("pass", 0.8),
            )


def _copy_reviews(conn, reviews: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into raw.human_reviews (review_id, run_id, reviewer, verdict, reviewed_at)"
            " values (%s, %s, %s, %s, %s)",
            [(*review, LOADED) for review in reviews],
        )
    conn.commit()


def _load_reference_tables(conn) -> None:
    versions = {}
    for suite, version, item_id, stage, category, expected in golden_items():
        versions.setdefault((suite, version), []).append(
            (
                suite,
                version,
                item_id,
                f"h-{item_id}",
                stage,
                category,
                json.dumps({}),
                json.dumps(expected),
            )
        )
    with conn.cursor() as cur:
        for (suite, version), rows in versions.items():
            kind = "answer" if suite == "general-qa" else "grader"
            cur.execute(
                "insert into raw.golden_suites (suite, suite_version, kind, verdicts, passing_verdicts,"
                " item_count, loaded_at) values (%s, %s, %s, %s, %s, %s, %s)",
                (suite, version, kind, VERDICTS, ["pass"], len(rows), LOADED),
            )
            cur.executemany(
                "insert into raw.golden_items (suite, suite_version, item_id, item_hash, stage,"
                " category, inputs, expected, loaded_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*row, LOADED) for row in rows],
            )
        cur.executemany(
            "insert into raw.prompt_versions (prompt_name, prompt_version, template, created_at)"
            " values (%s, %s, 't', %s)",
            [
                ("grader", "gp1", LOADED),
                ("grader", "gp2", LOADED),
                ("judge", "jp1", LOADED),
                ("answer", "ap1", LOADED),
            ],
        )
        alert = cur.execute(
            "insert into raw.alerts (dedupe_key, kind, severity, subject, message, example_run_ids,"
            " orchestrator_run_id, created_at) values ('k1', 'pass_rate_drift', 'warning',"
            " 'stage loops', 'loops got easy', %s, 'dagster-run-1', %s) returning alert_id",
            ([uuid.UUID(int=1), uuid.UUID(int=2)], LOADED),
        ).fetchone()[0]
        cur.execute(
            "insert into raw.alerts (dedupe_key, kind, severity, subject, message, created_at,"
            " acknowledged_at) values ('k2', 'cost_spike', 'info', 'model judge', 'cost up', %s, %s)",
            (LOADED, LOADED),
        )
        cur.execute(
            "insert into raw.alert_deliveries (alert_id, webhook, attempts, delivered_at)"
            " values (%s, 'slack', 1, %s), (%s, 'pager', 3, null)",
            (alert, LOADED, alert),
        )
        summary = {
            "paired_items": 27,
            "baseline_accuracy": 0.7,
            "candidate_accuracy": 0.85,
            "delta": 0.15,
            "ci_low": -0.02,
            "ci_high": 0.31,
            "mcnemar_p": 0.07,
            "baseline_only": 2,
            "candidate_only": 6,
        }
        cur.executemany(
            "insert into raw.gate_decisions (decision_id, suite, suite_version, baseline, candidate,"
            " decision, criteria, summary, decided_at) values (%s, 'intro-python', 'v2',"
            " 'tutor-small@gp1', 'tutor-large@gp2', %s, %s, %s, %s)",
            [
                (
                    uuid.UUID(int=10),
                    "no-deploy",
                    json.dumps(
                        [
                            {"name": "accuracy", "status": "fail"},
                            {"name": "regressions", "status": "insufficient"},
                        ]
                    ),
                    json.dumps(summary),
                    LOADED - timedelta(days=1),
                ),
                (
                    uuid.UUID(int=11),
                    "deploy",
                    json.dumps([{"name": "accuracy", "status": "pass"}]),
                    json.dumps(summary),
                    LOADED,
                ),
            ],
        )
    conn.commit()


# -- the module's warehouse: a full build, then an incremental one ------------------------------


@pytest.fixture(scope="module")
def built(pg_server, tmp_path_factory):
    """A warehouse after a full build of the first log and an incremental build of more rows."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    env = {
        **dbt_env(url=url, config=CONFIG, target_path=tmp_path_factory.mktemp("dbt_target")),
        # no look-back: the incremental build must pick up exactly the new rows
        "EVALHOUSE_DBT_INCREMENTAL_LOOKBACK_MINUTES": "0",
    }
    log = RunLog(seed=5)
    first_log(log, DAYS[:-1])
    with psycopg.connect(url) as conn:
        _load_reference_tables(conn)
        write_runs(conn, log.runs)
        _copy_reviews(conn, log.reviews)
    first = run_dbt(["build"], env=env)

    # the next day: a new day, late rows for an old day, retries that settle, new reviews
    earlier_runs, earlier_reviews = list(log.runs), len(log.reviews)
    log.runs.clear()
    first_log(log, [DAYS[-1]])
    late = RunLog(seed=9)
    first_log(late, [DAYS[3]])
    retried = [r for r in earlier_runs if r.status in ("error", "timeout")][:5]
    retries = [
        RunRecord(
            run_id=log.new_id(),
            idempotency_key=r.idempotency_key,
            source=r.source,
            role=r.role,
            model=r.model,
            started_at=r.started_at + timedelta(minutes=5),
            status="ok",
            stage=r.stage,
            prompt_name=r.prompt_name,
            prompt_version=r.prompt_version,
            suite=r.suite,
            suite_version=r.suite_version,
            item_id=r.item_id,
            verdict="pass",
            passed=True,
        )
        for r in retried
    ]
    old_sample = next(
        r for r in earlier_runs if r.source == "production_sample" and r.status == "ok"
    )
    extra = RunLog(seed=11)
    extra.review(old_sample, 3, "fail", panel="late-panel")
    late_runs = late.runs[:60]
    late_reviews = [r for r in late.reviews if r[1] in {run.run_id for run in late_runs}]
    with psycopg.connect(url) as conn:
        write_runs(conn, log.runs + late_runs + retries)
        _copy_reviews(conn, log.reviews[earlier_reviews:] + late_reviews + extra.reviews)
    second = run_dbt(["build"], env=env)
    yield {"url": url, "env": env, "first": first, "second": second}
    drop_database(pg_server, name)


def _frame(url: str, sql: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        frame = pd.DataFrame(
            cur.fetchall(), columns=[c.name for c in cur.description], dtype=object
        )
    return frame


@pytest.fixture(scope="module")
def runs(built) -> pd.DataFrame:
    """raw.eval_runs as the reference computations see it."""
    frame = _frame(
        built["url"],
        "select run_id, idempotency_key, batch_id, parent_run_id, trial, source, suite, suite_version,"
        " item_id, stage, category, role, model, prompt_version, status, verdict, passed, score,"
        " issue_tags, expected_verdict, sample_weight, attributes ->> 'position' as position, started_at, latency_ms,"
        " input_tokens, output_tokens, cost_usd from raw.eval_runs",
    )
    started = pd.to_datetime(frame["started_at"], utc=True)
    frame["ran_date"] = started.dt.date
    frame["run_date"] = [
        _evaluated_day(source, batch, ran)
        for source, batch, ran in zip(
            frame["source"], frame["batch_id"], frame["ran_date"], strict=True
        )
    ]
    frame["week_start"] = [day - timedelta(days=day.weekday()) for day in frame["run_date"]]
    frame["settled"] = frame["status"].isin(["ok", "parse_error"])
    frame["failed"] = frame["status"].isin(["error", "timeout"])
    frame["verdict_known"] = (frame["status"] == "ok") & frame["passed"].notna()
    frame["passed_ok"] = frame["verdict_known"] & (frame["passed"] == True)
    frame["correct"] = [
        None if exp is None or not settled else (status == "ok" and verdict == exp)
        for exp, settled, status, verdict in zip(
            frame["expected_verdict"],
            frame["settled"],
            frame["status"],
            frame["verdict"],
            strict=True,
        )
    ]
    for column in (
        "latency_ms",
        "score",
        "cost_usd",
        "sample_weight",
        "input_tokens",
        "output_tokens",
    ):
        frame[column] = pd.to_numeric(frame[column])
    return frame


def _evaluated_day(source: str, batch: str | None, ran: date) -> date:
    """A nightly golden batch's night, a re-grade's audited production day, else the day it ran."""
    prefix = {"golden": "golden:", "production_sample": "sample:"}.get(source)
    if prefix and batch and re.fullmatch(rf"{prefix}\d{{4}}-\d{{2}}-\d{{2}}", batch):
        return date.fromisoformat(batch.removeprefix(prefix))
    return ran


GRAIN = ["batch_id", "model", "prompt_version", "suite", "suite_version", "item_id", "trial"]


@pytest.fixture(scope="module")
def outcomes(runs) -> pd.DataFrame:
    """Golden outcomes recomputed from the raw rows: one per graded call's grain (its newest
    settled row), right by its own verdict, else by the first settled judgment of it."""
    graded = runs[
        runs["source"].isin(["golden", "ci"])
        & runs["role"].isin(["candidate", "grader"])
        & runs["settled"]
        & runs["suite"].notna()
        & runs["item_id"].notna()
        & runs["expected_verdict"].notna()
    ]
    graded = graded.sort_values("started_at").groupby(GRAIN, dropna=False).tail(1)
    judges = runs[(runs["role"] == "judge") & runs["settled"] & runs["parent_run_id"].notna()]
    first_judgment = {}
    for judge in judges.sort_values("started_at").itertuples():
        first_judgment.setdefault(judge.parent_run_id, judge)

    def outcome(row) -> str:
        if row.status == "parse_error":
            return "parse_error"
        if row.verdict is not None:
            return "correct" if row.verdict == row.expected_verdict else "incorrect"
        judge = first_judgment.get(row.run_id)
        if judge is None:
            return "unjudged"
        if judge.status == "parse_error":
            return "parse_error"
        return "correct" if judge.passed else "incorrect"

    def judge_run_id(row) -> uuid.UUID | None:
        judge = first_judgment.get(row.run_id)
        judged = row.status == "ok" and row.verdict is None and judge is not None
        return judge.run_id if judged else None

    return graded.assign(
        outcome=[outcome(row) for row in graded.itertuples()],
        judge_run_id=[judge_run_id(row) for row in graded.itertuples()],
    ).assign(
        is_correct=lambda f: f["outcome"] == "correct",
        category=lambda f: f["category"].fillna("(none)"),
    )


def _mart(built, name: str) -> pd.DataFrame:
    return _frame(built["url"], f"select * from marts.{name}")


def _wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (np.nan, np.nan)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    p = successes / n
    return (max(0.0, min(low, p)), min(1.0, max(high, p)))


def _ratio(a, b):
    return a / b if b else np.nan


def _keyed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for key in keys:
        frame[key] = frame[key].map(
            lambda v: (
                NO_KEY
                if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                else str(v)
            )
        )
    return frame.set_index(keys).sort_index()


def assert_mart_equals(mart: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same rows (by key) and, column by column, the same values (numbers to 1e-9)."""
    assert len(expected) > 0, "the reference computed nothing: the fixture lost its variety"
    got, want = _keyed(mart, keys), _keyed(expected, keys)
    assert not got.index.duplicated().any()
    assert got.index.equals(want.index), (
        f"rows differ: only in mart {list(got.index.difference(want.index))[:3]},"
        f" only in reference {list(want.index.difference(got.index))[:3]}"
    )
    for column in want.columns:
        a, b = got[column], want[column]
        numeric = (
            pd.to_numeric(b.dropna(), errors="coerce").notna().all()
            and b.map(lambda v: not isinstance(v, bool | np.bool_)).all()
        )
        if numeric:
            a = pd.to_numeric(a).astype(float).to_numpy()
            b = pd.to_numeric(b).astype(float).to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"{column}: nulls differ"
            ok = np.isnan(a) | (np.abs(a - b) <= TOL)
            assert ok.all(), f"{column}: {a[~ok][:3]} != {b[~ok][:3]}"
        else:
            mismatched = [
                (x, y)
                for x, y in zip(a, b, strict=True)
                if not (x == y or (pd.isna(x) and pd.isna(y)))
            ]
            assert not mismatched, f"{column}: {mismatched[:3]}"


# -- the builds themselves --------------------------------------------------------------------


def test_full_and_incremental_builds_pass_every_model_test_and_unit_test(built):
    for build in ("first", "second"):
        result = built[build]
        failures = [
            f"{r.node.name}: {r.status} {r.message}"
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass")
        ]
        assert result.success, f"{build} build failed: {failures or result.exception}"
    kinds = Counter(r.node.resource_type for r in built["first"].result)
    assert kinds["model"] >= 19 and kinds["unit_test"] >= 4 and kinds["test"] >= 100


def test_the_incremental_build_only_loaded_new_rows(built, runs):
    loads = _frame(
        built["url"],
        "select loaded_at, count(*) as n from marts.fct_eval_runs group by 1 order by 1",
    )
    assert len(loads) == 2, "a second build with no look-back loads only what arrived since"
    assert loads["n"].sum() == len(runs)


# -- every mart against an independent computation --------------------------------------------

STAGE_DIMS = ["stage", "source", "role", "model", "prompt_version", "suite", "suite_version"]


def test_fct_eval_runs_has_every_call_with_its_derived_columns(built, runs):
    mart = _mart(built, "fct_eval_runs")
    expected = runs[["run_id", "run_date", "week_start", "ran_date", "status", "position"]].assign(
        is_settled=runs["settled"],
        is_failed=runs["failed"],
        is_correct=runs["correct"],
        total_tokens=runs["input_tokens"].fillna(0) + runs["output_tokens"].fillna(0),
    )
    assert_mart_equals(mart[expected.columns], expected, ["run_id"])


def test_fct_stage_daily_matches_pandas(built, runs):
    rows = []
    staged = runs[runs["stage"].notna()]
    for dims, group in staged.groupby([*STAGE_DIMS, "run_date"], dropna=False):
        verdicts = group["verdict_known"].sum()
        passed = group["passed_ok"].sum()
        weights = group["sample_weight"].fillna(1.0)
        scored = group[(group["status"] == "ok") & group["score"].notna()]
        low, high = _wilson(passed, verdicts)
        rows.append(
            {
                **dict(zip([*STAGE_DIMS, "run_date"], dims, strict=True)),
                "n_calls": len(group),
                "n_settled": group["settled"].sum(),
                "n_failed": group["failed"].sum(),
                "n_parse_errors": (group["status"] == "parse_error").sum(),
                "n_verdicts": verdicts,
                "n_passed": passed,
                "pass_rate": _ratio(passed, verdicts),
                "pass_rate_ci_low": low,
                "pass_rate_ci_high": high,
                "weighted_pass_rate": _ratio(
                    weights[group["passed_ok"]].sum(), weights[group["verdict_known"]].sum()
                ),
                "n_scored": len(scored),
                "mean_score": scored["score"].mean() if len(scored) else np.nan,
            }
        )
    expected = pd.DataFrame(rows)
    baseline_n, baseline_passed = [], []
    for row in expected.itertuples():
        same = expected[
            np.logical_and.reduce(
                [
                    (expected[d].isna() & pd.isna(getattr(row, d)))
                    | (expected[d] == getattr(row, d))
                    for d in STAGE_DIMS
                ]
            )
            & (expected["run_date"] >= row.run_date - timedelta(days=BASELINE_DAYS))
            & (expected["run_date"] < row.run_date)
        ]
        baseline_n.append(same["n_verdicts"].sum())
        baseline_passed.append(same["n_passed"].sum())
    expected["baseline_n_verdicts"] = baseline_n
    expected["baseline_pass_rate"] = [
        _ratio(p, n) for p, n in zip(baseline_passed, baseline_n, strict=True)
    ]
    bands = expected["stage"].map(
        lambda s: CONFIG.drift.stage_bands.get(s, CONFIG.drift.default_band)
    )
    expected["band_too_easy_above"] = bands.map(lambda b: b.too_easy_above)
    expected["band_stalling_below"] = bands.map(lambda b: b.stalling_below)
    expected["too_easy"] = (expected["pass_rate"] > expected["band_too_easy_above"]).astype(bool)
    expected["stalling"] = (expected["pass_rate"] < expected["band_stalling_below"]).astype(bool)
    expected["too_easy_vs_baseline"] = (
        expected["pass_rate_ci_low"] > expected["baseline_pass_rate"]
    ).astype(bool)
    expected["stalling_vs_baseline"] = (
        expected["pass_rate_ci_high"] < expected["baseline_pass_rate"]
    ).astype(bool)
    mart = _mart(built, "fct_stage_daily")
    assert_mart_equals(mart[expected.columns], expected, [*STAGE_DIMS, "run_date"])
    assert mart["too_easy"].any() and mart["too_easy_vs_baseline"].any(), (
        "the story has an easy stage"
    )
    assert mart["stalling"].any()


TREND_DIMS = ["model", "prompt_version", "suite", "suite_version", "source", "role"]


def test_fct_trend_daily_matches_pandas(built, runs, outcomes):
    rows = []
    golden = {
        dims: group for dims, group in outcomes.groupby([*TREND_DIMS, "run_date"], dropna=False)
    }
    for dims, group in runs.groupby([*TREND_DIMS, "run_date"], dropna=False):
        settled_latency = group.loc[group["settled"], "latency_ms"].dropna()
        graded = golden.get(dims, outcomes.iloc[:0])
        with_expected, correct = len(graded), graded["is_correct"].sum()
        low, high = _wilson(correct, with_expected)
        n = len(group)
        rows.append(
            {
                **dict(zip([*TREND_DIMS, "run_date"], dims, strict=True)),
                "n_calls": n,
                "n_ok": (group["status"] == "ok").sum(),
                "n_failed": group["failed"].sum(),
                "n_parse_errors": (group["status"] == "parse_error").sum(),
                "error_rate": group["failed"].sum() / n,
                "parse_error_rate": (group["status"] == "parse_error").sum() / n,
                "n_verdicts": group["verdict_known"].sum(),
                "n_passed": group["passed_ok"].sum(),
                "pass_rate": _ratio(group["passed_ok"].sum(), group["verdict_known"].sum()),
                "n_with_expected": with_expected,
                "n_correct": correct,
                "accuracy": _ratio(correct, with_expected),
                "n_golden_parse_errors": (graded["outcome"] == "parse_error").sum(),
                "n_unjudged": (graded["outcome"] == "unjudged").sum(),
                "accuracy_ci_low": low,
                "accuracy_ci_high": high,
                "latency_p50_ms": np.percentile(settled_latency, 50)
                if len(settled_latency)
                else np.nan,
                "latency_p95_ms": np.percentile(settled_latency, 95)
                if len(settled_latency)
                else np.nan,
                "input_tokens": group["input_tokens"].sum(),
                "output_tokens": group["output_tokens"].sum(),
                "cost_usd": group["cost_usd"].sum(),
                "cost_per_call_usd": group["cost_usd"].sum() / n,
            }
        )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_trend_daily")
    assert_mart_equals(mart[expected.columns], expected, [*TREND_DIMS, "run_date"])


def test_fct_issue_distribution_daily_matches_pandas(built, runs):
    rows = []
    ok = runs[(runs["status"] == "ok") & runs["stage"].notna()]
    for dims, group in ok.groupby([*STAGE_DIMS, "run_date"], dropna=False):
        counts = Counter(tag for tags in group["issue_tags"] for tag in set(tags))
        mentions = sum(counts.values())
        for tag, count in counts.items():
            rows.append(
                {
                    **dict(zip([*STAGE_DIMS, "run_date"], dims, strict=True)),
                    "issue_tag": tag,
                    "n_runs_with_tag": count,
                    "n_runs": len(group),
                    "share_of_runs": count / len(group),
                    "share_of_tags": count / mentions,
                }
            )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_issue_distribution_daily")
    assert_mart_equals(mart[expected.columns], expected, [*STAGE_DIMS, "run_date", "issue_tag"])


COST_DIMS = ["model", "source", "role", "prompt_version"]


def test_fct_model_cost_daily_matches_pandas(built, runs):
    rows = []
    for dims, group in runs.groupby([*COST_DIMS, "run_date"], dropna=False):
        passing = group["passed_ok"].sum()
        cost = group["cost_usd"].sum()
        rows.append(
            {
                **dict(zip([*COST_DIMS, "run_date"], dims, strict=True)),
                "n_calls": len(group),
                "n_failed": group["failed"].sum(),
                "n_passing_verdicts": passing,
                "input_tokens": group["input_tokens"].sum(),
                "output_tokens": group["output_tokens"].sum(),
                "cost_usd": cost,
                "cost_per_passing_verdict_usd": _ratio(cost, passing),
            }
        )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_model_cost_daily")
    assert_mart_equals(mart[expected.columns], expected, [*COST_DIMS, "run_date"])
    judge_spend = mart[mart["role"] != "candidate"]["cost_usd"].astype(float).sum()
    assert judge_spend > 0, "judge spend is reported apart from candidate spend"


def _consensus(built) -> dict:
    reviews = _frame(
        built["url"], "select run_id, verdict from raw.human_reviews where verdict is not null"
    )
    result = {}
    for run_id, group in reviews.groupby("run_id"):
        label, count = Counter(group["verdict"]).most_common(1)[0]
        result[run_id] = label if count * 2 > len(group) else None
    return result


def _golden_expected(built) -> dict:
    items = _frame(
        built["url"],
        "select suite, suite_version, item_id, expected ->> 'verdict' as v from raw.golden_items",
    )
    return {(r.suite, r.suite_version, r.item_id): r.v for r in items.itertuples()}


AGREEMENT_DIMS = [
    "reference",
    "presentation_order",
    "stage",
    "source",
    "role",
    "model",
    "prompt_version",
    "suite",
    "suite_version",
]


def test_fct_verdict_agreement_weekly_matches_pandas(built, runs):
    consensus, items = _consensus(built), _golden_expected(built)
    settled = runs[runs["settled"]].copy()
    settled["presentation_order"] = settled["position"].map(
        {"original": "first", "swapped": "swapped"}
    )
    settled["label"] = [
        "<parse_error>" if s == "parse_error" else (v if v is not None else "<no_verdict>")
        for s, v in zip(settled["status"], settled["verdict"], strict=True)
    ]
    expected_verdict = [
        e if e is not None else items.get((s, sv, i))
        for e, s, sv, i in zip(
            settled["expected_verdict"],
            settled["suite"],
            settled["suite_version"],
            settled["item_id"],
            strict=True,
        )
    ]
    humans = settled[settled["run_id"].isin(consensus.keys())].assign(
        reference="human_consensus", reference_label=lambda f: f["run_id"].map(consensus)
    )
    golden = settled.assign(reference="golden_expected", reference_label=expected_verdict)
    golden = golden[golden["reference_label"].notna()]
    rows = []
    for dims, group in pd.concat([humans, golden]).groupby(
        [*AGREEMENT_DIMS, "week_start"], dropna=False
    ):
        compared = group[group["reference_label"].notna()]
        n = len(compared)
        agree = (compared["label"] == compared["reference_label"]).sum()
        parse_errors = (compared["label"] == "<parse_error>").sum()
        low, high = _wilson(agree, n)
        kappa = chance = np.nan
        if n:
            labels = sorted(set(compared["label"]) | set(compared["reference_label"]))
            table = pd.crosstab(compared["label"], compared["reference_label"]).reindex(
                index=labels, columns=labels, fill_value=0
            )
            chance = float((table.sum(axis=1) * table.sum(axis=0)).sum() / n**2)
            kappa = cohens_kappa(table.to_numpy()).kappa if chance < 1 else np.nan
        rows.append(
            {
                **dict(zip([*AGREEMENT_DIMS, "week_start"], dims, strict=True)),
                "n": n,
                "n_agree": agree,
                "agreement": _ratio(agree, n),
                "agreement_ci_low": low,
                "agreement_ci_high": high,
                "n_parse_errors": parse_errors,
                "agreement_excluding_parse_errors": _ratio(agree, n - parse_errors),
                "n_without_consensus": len(group) - n,
                "chance_agreement": chance,
                "cohens_kappa": kappa,
                "confusion_counts": dict(
                    Counter(
                        f"{a} -> {b}"
                        for a, b in zip(compared["label"], compared["reference_label"], strict=True)
                    )
                ),
            }
        )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_verdict_agreement_weekly")
    assert_mart_equals(mart[expected.columns], expected, [*AGREEMENT_DIMS, "week_start"])
    assert mart["n_without_consensus"].astype(int).sum() > 0, (
        "ties were counted, not dropped silently"
    )
    assert mart["n_parse_errors"].astype(int).sum() > 0


ITEM_DIMS = [
    "week_start",
    "source",
    "batch_id",
    "parent_run_id",
    "suite",
    "suite_version",
    "item_id",
    "stage",
    "role",
    "model",
    "prompt_version",
]
CONSISTENCY_DIMS = ["stage", "source", "role", "model", "prompt_version", "suite", "suite_version"]


def test_fct_judge_consistency_matches_pandas(built, runs):
    consensus = _consensus(built)
    settled = runs[runs["settled"] & (runs["item_id"].notna() | runs["parent_run_id"].notna())]
    items = []
    for _, group in settled.groupby(ITEM_DIMS, dropna=False):
        if len(group) < 2 or not ((group["trial"] > 0) | group["position"].notna()).any():
            continue
        consistent = (
            (group["status"] == "ok").all()
            and group["verdict"].notna().all()
            and group["verdict"].nunique() == 1
        )
        has_expected = group["correct"].notna().all()
        majorities = [consensus[run_id] for run_id in group["run_id"] if run_id in consensus]
        human = (
            majorities[0]
            if majorities and None not in majorities and len(set(majorities)) == 1
            else None
        )
        items.append(
            {
                "reviewed": bool(majorities),
                "human": human is not None,
                "human_all": human is not None
                and ((group["status"] == "ok") & (group["verdict"] == human)).all(),
                **{d: group[d].iloc[0] for d in [*CONSISTENCY_DIMS, "week_start"]},
                "n_judgments": len(group),
                "consistent": consistent,
                "has_expected": has_expected,
                "all_correct": has_expected and (group["correct"] == True).all(),
                "n_correct": (group["correct"] == True).sum(),
            }
        )
    items = pd.DataFrame(items)
    rows = []
    for dims, group in items.groupby([*CONSISTENCY_DIMS, "week_start"], dropna=False):
        n, consistent = len(group), group["consistent"].sum()
        with_expected = group[group["has_expected"]]
        all_correct = with_expected["all_correct"].sum()
        rows.append(
            {
                **dict(zip([*CONSISTENCY_DIMS, "week_start"], dims, strict=True)),
                "n_items": n,
                "n_judgments": group["n_judgments"].sum(),
                "n_items_consistent": consistent,
                "consistency_rate": consistent / n,
                **dict(
                    zip(
                        ["consistency_ci_low", "consistency_ci_high"],
                        _wilson(consistent, n),
                        strict=True,
                    )
                ),
                "n_items_with_expected": len(with_expected),
                "n_items_all_correct": all_correct,
                "strict_accuracy": _ratio(all_correct, len(with_expected)),
                **dict(
                    zip(
                        ["strict_accuracy_ci_low", "strict_accuracy_ci_high"],
                        _wilson(all_correct, len(with_expected)),
                        strict=True,
                    )
                ),
                "judgment_accuracy": _ratio(
                    with_expected["n_correct"].sum(), with_expected["n_judgments"].sum()
                ),
                "n_items_with_human_majority": group["human"].sum(),
                "n_items_without_human_majority": (group["reviewed"] & ~group["human"]).sum(),
                "n_items_all_agree_with_human_majority": group["human_all"].sum(),
                "strict_agreement_with_human_majority": _ratio(
                    group["human_all"].sum(), group["human"].sum()
                ),
                **dict(
                    zip(
                        [
                            "strict_agreement_with_human_majority_ci_low",
                            "strict_agreement_with_human_majority_ci_high",
                        ],
                        _wilson(group["human_all"].sum(), group["human"].sum()),
                        strict=True,
                    )
                ),
            }
        )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_judge_consistency")
    assert mart["n_items_with_human_majority"].astype(int).sum() > 0
    assert mart["n_items_without_human_majority"].astype(int).sum() > 0
    assert_mart_equals(mart[expected.columns], expected, [*CONSISTENCY_DIMS, "week_start"])
    strict = mart["strict_accuracy"].dropna().astype(float)
    per_judgment = mart.loc[strict.index, "judgment_accuracy"].astype(float)
    assert (strict <= per_judgment + TOL).all(), (
        "all-judgments-correct is never easier than per judgment"
    )


LEADERBOARD_KEYS = ["suite", "suite_version", "category", "role", "model", "prompt_version"]


def test_fct_leaderboard_matches_pandas(built, outcomes):
    items = _frame(
        built["url"],
        "select suite, suite_version, item_id, coalesce(category, '(none)') as category from raw.golden_items",
    )
    scored = outcomes
    rows = []
    for category_view in ("by_category", "all"):
        frame = scored if category_view == "by_category" else scored.assign(category="(all)")
        for dims, group in frame.groupby(LEADERBOARD_KEYS, dropna=False):
            suite, version, category = dims[0], dims[1], dims[2]
            in_version = items[(items["suite"] == suite) & (items["suite_version"] == version)]
            loaded = len(in_version) > 0
            in_category = (
                in_version
                if category == "(all)"
                else in_version[in_version["category"] == category]
            )
            judged = len(set(group["item_id"]) & set(in_category["item_id"]))
            correct = group["is_correct"].sum()
            rows.append(
                {
                    **dict(zip(LEADERBOARD_KEYS, dims, strict=True)),
                    "n_judged": len(group),
                    "n_correct": correct,
                    "accuracy": correct / len(group),
                    "n_parse_errors": (group["outcome"] == "parse_error").sum(),
                    "n_unjudged": (group["outcome"] == "unjudged").sum(),
                    **dict(
                        zip(
                            ["accuracy_ci_low", "accuracy_ci_high"],
                            _wilson(correct, len(group)),
                            strict=True,
                        )
                    ),
                    "n_items_judged": judged if loaded else np.nan,
                    "n_items_in_suite": len(in_category) if loaded else np.nan,
                    "coverage": _ratio(judged, len(in_category)) if loaded else np.nan,
                }
            )
    expected = pd.DataFrame(rows)
    mart = _mart(built, "fct_leaderboard")
    assert_mart_equals(mart[expected.columns], expected, LEADERBOARD_KEYS)
    assert mart["coverage"].isna().any() and (mart["coverage"].dropna().astype(float) < 1).any()


@pytest.mark.parametrize("relation", ["int_golden_outcomes_live", "int_golden_outcomes"])
def test_golden_outcomes_match_pandas_in_the_view_and_the_incremental_table(
    built, outcomes, relation
):
    """The view Python reads before dbt runs and the table the marts read after an incremental
    build (late rows of an old golden night superseding its first ones) hold the same rows."""
    frame = _frame(built["url"], f"select * from intermediate.{relation}")
    frame["category"] = frame["category"].fillna("(none)")
    columns = ["run_id", "run_date", "outcome", "is_correct", "category", "judge_run_id"]
    assert_mart_equals(frame[columns], outcomes[columns], ["run_id"])
    assert set(frame["outcome"]) == {"correct", "incorrect", "parse_error", "unjudged"}


def _golden_call(day: date, batch: str | None, item: str, **fields) -> RunRecord:
    """A settled golden grader (or, with verdict=None, answer) call of `item` on `day`."""
    values = {
        "idempotency_key": uuid.uuid4().hex,
        "source": "golden" if batch else "ci",
        "role": "grader",
        "model": "tutor-small",
        "prompt_version": "gp1",
        "suite": "intro-python",
        "suite_version": "v1",
        "item_id": item,
        "expected_verdict": "pass",
        "verdict": "pass",
        "passed": True,
        "started_at": datetime(day.year, day.month, day.day, 1, tzinfo=UTC),
        "status": "ok",
        "batch_id": batch,
        **fields,
    }
    return RunRecord(**values)


def test_golden_outcomes_rewrite_exactly_the_batches_that_changed(warehouse_url, tmp_path):
    """An incremental build rewrites a batch whose grain got a newer settled row, a batch one of
    whose answers a later judgment (a rejudge, in another batch) decided, and the calls without
    a batch; it leaves every other batch as it was, and the table equals the view."""
    env = dbt_env(url=warehouse_url, config=CONFIG, target_path=tmp_path / "target")
    night, other_night = date(2026, 10, 1), date(2026, 10, 2)
    answer = _golden_call(
        night,
        f"golden:{night}",
        "q-1",
        role="candidate",
        verdict=None,
        passed=None,
        suite="general-qa",
        suite_version="q1",
        expected_verdict="42",
    )
    first = _golden_call(night, f"golden:{night}", "item-1")
    untouched = _golden_call(other_night, f"golden:{other_night}", "item-1")
    unbatched = _golden_call(night, None, "item-2", verdict="fail", passed=False)
    later = [
        _golden_call(
            night,
            f"golden:{night}",
            "item-1",
            verdict="fail",
            passed=False,
            started_at=first.started_at + timedelta(hours=2),
        ),
        RunRecord(
            idempotency_key=uuid.uuid4().hex,
            source="rejudge",
            role="judge",
            model="judge-b",
            started_at=datetime(2026, 10, 5, tzinfo=UTC),
            status="ok",
            batch_id=f"rejudge:judge-b:{night}",
            parent_run_id=answer.run_id,
            verdict="pass",
            passed=True,
        ),
        _golden_call(night, None, "item-3"),
    ]
    select = ["run", "--select", "+int_golden_outcomes"]
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, [answer, first, untouched, unbatched])
    assert run_dbt(select, env=env).success
    table_sql = (
        "select run_id, outcome, judge_run_id, loaded_at from intermediate.int_golden_outcomes"
    )
    before = _frame(warehouse_url, table_sql).set_index("run_id")
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, later)
    assert run_dbt(select, env=env).success

    table = _frame(warehouse_url, table_sql).set_index("run_id")
    assert table.sort_index()["outcome"].to_dict() == {
        run.run_id: outcome
        for run, outcome in [
            (answer, "correct"),
            (untouched, "correct"),
            (unbatched, "incorrect"),
            (later[0], "incorrect"),
            (later[2], "correct"),
        ]
    }
    assert table.at[answer.run_id, "judge_run_id"] == later[1].run_id
    assert table.at[untouched.run_id, "loaded_at"] == before.at[untouched.run_id, "loaded_at"]
    assert (table.drop(untouched.run_id)["loaded_at"] > before["loaded_at"].max()).all()
    view = _frame(
        warehouse_url,
        "select run_id, outcome, judge_run_id from intermediate.int_golden_outcomes_live",
    ).set_index("run_id")
    assert view.sort_index().equals(table.drop(columns="loaded_at").sort_index())
    with psycopg.connect(warehouse_url) as conn:
        recorded = dict(
            conn.execute(
                "select split_part(model, '.', 3), loaded_through"
                " from intermediate.incremental_watermarks"
            ).fetchall()
        )
        [(newest,)] = conn.execute("select max(loaded_at) from intermediate.int_eval_runs")
    # what a build that writes no rows leaves: the next build starts from here, not from scratch
    assert recorded == {'"int_eval_runs"': newest, '"int_golden_outcomes"': newest}


def test_the_look_back_loads_a_late_commit_once_and_the_window_not_twice(warehouse_url, tmp_path):
    """A row committed late (ingested before the newest loaded row, inside the 60-minute
    look-back) is loaded by the next build; the window's rows already loaded are not loaded
    again; a row ingested before the window is not read (what the look-back bounds)."""
    env = dbt_env(url=warehouse_url, config=CONFIG, target_path=tmp_path / "target")
    night = date(2026, 10, 1)
    loaded = [_golden_call(night, None, f"item-{i}") for i in range(3)]
    late, too_late = _golden_call(night, None, "late"), _golden_call(night, None, "too-late")
    select = ["run", "--select", "int_eval_runs"]
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, loaded)
    assert run_dbt(select, env=env).success
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, [late, too_late])
        for run, minutes in ((late, 30), (too_late, 90)):
            conn.execute(
                "update raw.eval_runs set ingested_at = ("
                " select max(ingested_at) from raw.eval_runs where run_id <> all(%s)"
                ") - make_interval(mins => %s) where run_id = %s",
                ([late.run_id, too_late.run_id], minutes, run.run_id),
            )
    assert run_dbt(select, env=env).success

    rows = _frame(warehouse_url, "select run_id from intermediate.int_eval_runs")
    assert sorted(rows["run_id"]) == sorted(run.run_id for run in [*loaded, late])


def _judged_answer_accuracy(runs: pd.DataFrame, judged_only: bool = False) -> pd.Series:
    """general-qa accuracy per model: the share of answers whose first settled judgment passes
    (a parse error or a missing judgment is not a pass), straight from the raw rows;
    `judged_only` leaves out the answers no judgment was settled for."""
    answers = runs[
        (runs["suite"] == "general-qa") & (runs["role"] == "candidate") & runs["settled"]
    ]
    judges = runs[(runs["role"] == "judge") & runs["settled"]].sort_values("started_at")
    first = judges.groupby("parent_run_id").head(1).set_index("parent_run_id")
    if judged_only:
        answers = answers[
            (answers["status"] == "parse_error") | answers["run_id"].isin(first.index)
        ]
    passes = [
        status == "ok"
        and run_id in first.index
        and first.at[run_id, "status"] == "ok"
        and bool(first.at[run_id, "passed"])
        for run_id, status in zip(answers["run_id"], answers["status"], strict=True)
    ]
    return pd.Series(passes, index=answers.index).groupby(answers["model"]).mean()


def test_answer_suite_accuracy_is_the_share_of_judged_passes_in_every_mart(built, runs):
    expected = _judged_answer_accuracy(runs)
    assert 0.5 < expected["tutor-large"] < 0.95, "the fixture judges most answers as passing"
    leaderboard = _mart(built, "fct_leaderboard").query(
        "suite == 'general-qa' and category == '(all)'"
    )
    assert float(leaderboard.set_index("model").at["tutor-large", "accuracy"]) == pytest.approx(
        expected["tutor-large"]
    )
    trend = _mart(built, "fct_trend_daily").query("suite == 'general-qa' and role == 'candidate'")
    assert trend["n_correct"].sum() / trend["n_with_expected"].sum() == pytest.approx(
        expected["tutor-large"]
    )
    from evals.cli.demo import golden_accuracy

    with psycopg.connect(built["url"]) as conn:
        demo = {(model, suite): accuracy for model, suite, accuracy, _ in golden_accuracy(conn)}
    assert demo[("tutor-large", "general-qa")] == pytest.approx(expected["tutor-large"])


def test_the_regression_check_reads_golden_outcomes_per_night(built, runs, outcomes):
    from evals.marts import load_query
    from orchestration.defs.drift.checks import QUERIES

    nightly = outcomes[
        (outcomes["source"] == "golden")
        & outcomes["batch_id"].str.startswith("golden:")
        & (outcomes["outcome"] != "unjudged")
    ]
    expected = nightly.groupby(["run_date", "model", "suite", "item_id"])["is_correct"].all()
    checked = _frame(built["url"], load_query(QUERIES / "golden_items.sql")).set_index(
        ["day", "model", "suite", "item_id"]
    )["correct"]
    assert checked.sort_index().to_dict() == expected.sort_index().to_dict()
    answers = checked.xs("general-qa", level="suite")
    judged = _judged_answer_accuracy(runs, judged_only=True)["tutor-large"]
    assert judged > _judged_answer_accuracy(runs)["tutor-large"], "the fixture has unjudged answers"
    assert answers.mean() == pytest.approx(judged)


def test_backfilled_golden_batches_and_regrades_are_dated_by_the_day_they_evaluate(built, runs):
    mart = _mart(built, "fct_eval_runs").set_index("run_id")
    backfilled = runs[runs["batch_id"] == f"golden:{DAYS[2]}"]
    assert set(mart.loc[backfilled["run_id"], "run_date"]) == {DAYS[2]}
    assert set(mart.loc[backfilled["run_id"], "ran_date"]) == {
        DAYS[2] + timedelta(days=BACKFILL_LAG)
    }
    regrades = runs[runs["batch_id"] == f"sample:{DAYS[4]}"]
    assert set(mart.loc[regrades["run_id"], "run_date"]) == {DAYS[4]}
    assert set(mart.loc[regrades["run_id"], "ran_date"]) == {DAYS[5]}
    trend = _mart(built, "fct_trend_daily")
    golden_days = set(trend.loc[trend["source"] == "golden", "run_date"])
    assert DAYS[2] in golden_days and DAYS[2] + timedelta(days=BACKFILL_LAG) not in golden_days


def test_fct_alerts_carries_links_for_bi(built):
    alerts = _mart(built, "fct_alerts").set_index("dedupe_key")
    first = alerts.loc["k1"]
    base = CONFIG.alerts.base_url
    assert first["alert_url"] == f"{base}/alerts/{first['alert_id']}"
    assert first["example_run_urls"] == [f"{base}/runs/{uuid.UUID(int=i)}" for i in (1, 2)]
    assert first["dagster_run_url"] == f"{CONFIG.alerts.dagster_url}/runs/dagster-run-1"
    assert (first["n_webhooks"], first["n_webhooks_delivered"], first["state"]) == (2, 1, "open")
    assert (
        alerts.loc["k2", "state"] == "acknowledged" and alerts.loc["k2", "dagster_run_url"] is None
    )


# -- the guards around the marts --------------------------------------------------------------


def test_a_series_mixing_prompt_versions_fails_a_dbt_test(built):
    row = "where series_key = %s and run_date = %s"
    with psycopg.connect(built["url"]) as conn:
        original = sorted(conn.execute("select * from marts.fct_trend_daily").fetchall(), key=str)
        series_key, run_date = conn.execute(
            "select series_key, max(run_date) from marts.fct_trend_daily group by series_key"
            " having count(*) > 1 order by series_key limit 1"
        ).fetchone()
        prompt_version = conn.execute(
            f"select prompt_version from marts.fct_trend_daily {row}", (series_key, run_date)
        ).fetchone()[0]
        conn.execute(
            f"update marts.fct_trend_daily set prompt_version = 'smuggled' {row}",
            (series_key, run_date),
        )
    result = run_dbt(
        ["test", "--select", "fct_trend_daily,test_name:one_version_per_series"], env=built["env"]
    )
    with psycopg.connect(built["url"]) as conn:  # the other tests read this mart as it was built
        conn.execute(
            f"update marts.fct_trend_daily set prompt_version = %s {row}",
            (prompt_version, series_key, run_date),
        )
        assert (
            sorted(conn.execute("select * from marts.fct_trend_daily").fetchall(), key=str)
            == original
        )
    assert not result.success
    assert [str(r.status) for r in result.result if r.node.resource_type == "test"] == ["fail"]


def test_every_python_reader_query_runs_on_the_built_marts(built):
    """The .sql files of the dbt exposures, with names resolved from the manifest, all answer."""
    params = {
        "date_from": None,
        "date_to": None,
        "suite": None,
        "source": None,
        "role": "all",
        "model": None,
        "prompt_version": None,
        "default_days": 30,
        "min_daily_n": 1,  # the web overview's
        "first": DAYS[0],
        "last": DAYS[-1],
        "today": DAYS[-1],
        "drift": DAYS[10],
    }  # demo's
    files = [
        path
        for folder in ("evals/web/queries", "evals/cli/queries", "orchestration/defs/drift/queries")
        for path in sorted((REPO_ROOT / folder).glob("*.sql"))
        if not path.name.startswith("_")
    ]
    with psycopg.connect(built["url"]) as conn:
        empty = [
            path.name for path in files if not conn.execute(load_query(path), params).fetchall()
        ]
    assert len(files) == 19
    # this log's production rows are role `candidate`: the demo's report and the overview's
    # production estimate count the app's `grader` calls
    assert empty == ["production_estimate.sql", "stage_pass_rates.sql"]


# -- every mart unchanged by refactors -----------------------------------------------------------

CHECKSUMS = Path(__file__).with_name("mart_checksums.json")
# Set when a mart changes on purpose: the test then writes the new checksums (review the diff).
WRITE_CHECKSUMS_ENV = "EVALHOUSE_WRITE_MART_CHECKSUMS"
# Stamped by the build, not derived from the data.
LOAD_TIME_COLUMNS = {"loaded_at", "ingested_at", "runs_loaded_through", "reviews_ingested_through"}


def _column_text(name: str, data_type: str) -> str:
    """A column as text; floats to 10 significant digits, since sums in another row order may
    differ in the last bits."""
    column = f'"{name}"'
    if data_type not in ("double precision", "real"):
        return f"{column}::text"
    return (
        f"case when {column} = 0 or {column} in ('NaN', 'Infinity', '-Infinity') then {column}::text"
        f" else round({column}::numeric, 9 - floor(log(abs({column}::numeric)))::int)::text end"
    )


def mart_checksums(url: str) -> dict[str, dict[str, object]]:
    """Per mart: its row count and an order-independent md5 of its rows (load-time columns out)."""
    with psycopg.connect(url) as conn:
        columns: dict[str, list[str]] = {}
        for table, name, data_type in conn.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' order by table_name, ordinal_position"
        ):
            if name not in LOAD_TIME_COLUMNS:
                columns.setdefault(table, []).append(_column_text(name, data_type))
        checksums = {}
        for table, texts in sorted(columns.items()):
            rows, digest = conn.execute(
                f"select count(*), md5(coalesce(string_agg(row_md5, '' order by row_md5), ''))"
                f" from (select md5(row({', '.join(texts)})::text)"
                f" as row_md5 from marts.{table}) as hashed"
            ).fetchone()
            checksums[table] = {"rows": rows, "md5": digest}
    return checksums


def test_every_recorded_mart_matches_its_checksum(built):
    got = mart_checksums(built["url"])
    if os.environ.get(WRITE_CHECKSUMS_ENV):
        CHECKSUMS.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    recorded = json.loads(CHECKSUMS.read_text())
    # A mart added later has no "before" to match: record it with EVALHOUSE_WRITE_MART_CHECKSUMS.
    assert {name: got.get(name) for name in recorded} == recorded


def test_the_bi_role_reads_every_mart_and_nothing_below_them(built):
    with psycopg.connect(built["url"], autocommit=True) as conn:
        marts = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            )
        ]
        conn.execute("set role evalhouse_bi")
        assert {"fct_eval_runs", "fct_stage_daily", "fct_alerts"} <= set(marts)
        for mart in marts:  # fct_eval_runs among them: a view of intermediate.int_eval_runs
            conn.execute(f"select * from marts.{mart} limit 1").fetchall()
        for forbidden in (
            "raw.eval_runs",
            "raw.human_reviews",
            "staging.stg_raw__eval_runs",
            "intermediate.int_eval_runs",
            "intermediate.int_human_consensus",
            "intermediate.int_stage_daily_counts",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select 1 from {forbidden} limit 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from marts.fct_alerts")


def test_every_table_dbt_builds_has_planner_statistics_at_once(built):
    """The first query after a build plans with statistics, not autovacuum's later guess."""
    with psycopg.connect(built["url"]) as conn:
        tables = conn.execute(
            "select schemaname || '.' || relname, last_analyze is not null"
            " from pg_stat_user_tables"
            " where schemaname in ('staging', 'intermediate', 'marts')"
            " and relname <> 'incremental_watermarks'"  # the build's bookkeeping, not a model
        ).fetchall()
    assert "marts.fct_stage_daily" in dict(tables)
    assert "intermediate.int_eval_runs" in dict(tables)  # incremental tables too
    assert [name for name, analyzed in tables if not analyzed] == []


def test_docs_generate_works(built):
    target = Path(built["env"]["DBT_TARGET_PATH"])
    assert run_dbt(["docs", "generate"], env=built["env"]).success
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.evalhouse.fct_stage_daily" in catalog["nodes"]
    assert "model.evalhouse.int_eval_runs" in catalog["nodes"]


# table: (its freshness column, age of its newest row, expected status); see _raw__sources.yml
FRESHNESS = {
    "eval_runs": ("ingested_at", timedelta(hours=80), "error"),
    "human_reviews": ("ingested_at", timedelta(days=8), "warn"),
    "review_queue": ("queued_at", timedelta(hours=1), "pass"),
    "golden_suites": ("loaded_at", timedelta(days=400), "warn"),
    "golden_items": ("loaded_at", timedelta(days=10), "pass"),
    "prompt_versions": ("created_at", timedelta(days=10), "pass"),
    "alerts": ("created_at", timedelta(days=31), "warn"),
    "alert_deliveries": ("last_attempt_at", timedelta(days=1), "pass"),
    "gate_decisions": ("decided_at", timedelta(days=1000), "warn"),
    "eval_batches": ("heartbeat_at", timedelta(days=8), "warn"),
}


def test_every_source_table_has_freshness_and_only_stopped_writers_error(warehouse_url, tmp_path):
    log = RunLog(seed=1)
    run = log.call(
        key_parts=("fresh",),
        day=FIRST_DAY,
        source="production",
        role="candidate",
        model="m",
        **log.graded(None, 0),
    )
    with psycopg.connect(warehouse_url) as conn:
        _load_reference_tables(conn)
        write_runs(conn, log.runs)
        _copy_reviews(conn, [(log.new_id(), run.run_id, "r", "pass")])
        conn.execute(
            "insert into raw.review_queue (run_id, reason) values (%s, 'sampled')", (run.run_id,)
        )
        conn.execute("update raw.alert_deliveries set last_attempt_at = now()")
        open_batch(conn, BatchSpec("run", "golden:fresh", "golden", "m", "cli"), None)
        for table, (column, age, _) in FRESHNESS.items():
            conn.execute(f"update raw.{table} set {column} = now() - %s", (age,))
    env = dbt_env(url=warehouse_url, config=CONFIG, target_path=tmp_path / "dbt_target")
    freshness = run_dbt(["source", "freshness"], env=env)
    statuses = {
        r.node.name: str(r.status) for r in freshness.result if r.node.resource_type == "source"
    }
    assert statuses == {table: status for table, (_, _, status) in FRESHNESS.items()}
