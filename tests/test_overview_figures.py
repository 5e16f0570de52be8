"""Every figure of the ops overview, for every cohort the page offers, recomputed with pandas
from the raw rows (not the SQL under test) on a warehouse that mixes what must never be summed:
golden nights graded by a judge and run later as a backfill, production traffic under two
prompt versions, its reference-judge re-grades under two judge prompt versions, imports and
replays, human reviews."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database

from evals import warehouse
from evals.config import load_config
from evals.dbt import dbt_env, run_dbt
from evals.marts import render_query
from evals.runlog import RunRecord, idempotency_key, write_runs
from evals.stats import wilson_interval
from evals.web.db import WebDatabase
from evals.web.overview import overview_figures, parse_filters
from evals.web.overview_queries import QUERIES, overview_queries

FIRST_NIGHT = date(2026, 10, 1)
NIGHTS = 10
STAGES = ("basics", "loops")
TAGS = ("off_by_one", "naming", "edge_cases")
SUITE, ANSWER_SUITE = "intro-python", "general-qa"
SOURCES = ("production", "production_sample", "golden", "import", "replay", "all")


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _call(rng: random.Random, key: str, **fields) -> RunRecord:
    status = rng.choices(["ok", "error", "parse_error"], [0.9, 0.05, 0.05])[0]
    record = RunRecord(
        idempotency_key=idempotency_key(key),
        status=status,
        latency_ms=rng.uniform(200, 900),
        input_tokens=rng.randint(100, 400),
        output_tokens=rng.randint(20, 90),
        cost_usd=round(rng.uniform(1e-4, 9e-4), 7),
        **fields,
    )
    if status == "ok" and record.role != "candidate":
        record.verdict = rng.choice(["pass", "revise", "fail"])
        record.passed = record.verdict == "pass"
        record.issue_tags = rng.sample(TAGS, rng.randint(0, 2))
    return record


def generate() -> tuple[list[RunRecord], list[tuple]]:
    """The run log and the human reviews (run_id, reviewer, verdict)."""
    rng = random.Random(11)
    runs: list[RunRecord] = []
    for offset in range(NIGHTS):
        night = FIRST_NIGHT + timedelta(days=offset)
        prompt = "gp1" if offset < NIGHTS // 2 else "gp2"
        judge_prompt = "jp1" if offset < 3 else "jp2"
        for n in range(30):
            stage = STAGES[n % 2]
            app = _call(
                rng,
                f"prod-{night}-{n}",
                source="production",
                role="grader",
                model="app-grader",
                prompt_name="grader",
                prompt_version=prompt,
                suite=SUITE if n % 3 else None,
                stage=stage,
                started_at=_at(night, 8 + n % 12),
                batch_id="capture",
            )
            runs.append(app)
            if n % 4 == 0:  # the nightly sample: re-graded by the reference judge next morning
                runs.append(
                    _call(
                        rng,
                        f"sample-{app.run_id}",
                        source="production_sample",
                        role="judge",
                        model="ref-judge",
                        prompt_name="judge",
                        prompt_version=judge_prompt,
                        parent_run_id=app.run_id,
                        suite=app.suite,
                        stage=stage,
                        sample_weight=4.0,
                        started_at=_at(night + timedelta(days=1), 3),
                        batch_id=f"sample:{night}",
                    )
                )
        # The golden night, run as a backfill three days later: it belongs to its night.
        for model in ("tutor-large", "tutor-small"):
            for item in range(12):
                ran = _at(night + timedelta(days=3), 1)
                common = dict(
                    source="golden",
                    suite=ANSWER_SUITE,
                    suite_version="v1",
                    item_id=f"q{item}",
                    stage=STAGES[item % 2],
                    batch_id=f"golden:{night}",
                    expected_verdict="pass",
                )
                candidate = _call(
                    rng,
                    f"gold-{night}-{model}-{item}",
                    role="candidate",
                    model=model,
                    prompt_name="answer",
                    prompt_version="ap1",
                    started_at=ran,
                    **common,
                )
                runs.append(candidate)
                if candidate.status == "ok":
                    runs.append(
                        _call(
                            rng,
                            f"gold-judge-{candidate.run_id}",
                            role="judge",
                            model="ref-judge",
                            prompt_name="judge",
                            prompt_version=judge_prompt,
                            parent_run_id=candidate.run_id,
                            started_at=ran + timedelta(seconds=5),
                            **common,
                        )
                    )
        for n in range(5):
            runs.append(
                _call(
                    rng,
                    f"import-{night}-{n}",
                    source="import",
                    role="grader",
                    model="other-tool",
                    suite=SUITE,
                    stage=STAGES[n % 2],
                    prompt_version="ext",
                    started_at=_at(night, 12),
                )
            )
    production = [r for r in runs if r.source == "production" and r.status == "ok"]
    for n, original in enumerate(production[::15]):
        runs.append(
            _call(
                rng,
                f"replay-{n}",
                source="replay",
                role="grader",
                model="app-grader",
                prompt_name="grader",
                prompt_version="gp2",
                parent_run_id=original.run_id,
                suite=original.suite,
                stage=original.stage,
                started_at=original.started_at + timedelta(hours=2),
            )
        )
    reviews = []
    for n, run in enumerate(production[::6]):
        for reviewer in ("ana", "ben", "cy")[: 2 + n % 2]:
            reviews.append((run.run_id, reviewer, rng.choice(["pass", "fail", run.verdict])))
    return runs, reviews


class _Noted(dict):
    """Relations that note each model a query refs (its name stands for the relation)."""

    def __missing__(self, model: str) -> str:
        self[model] = model
        return model


def _read_by_the_overview() -> list[str]:
    """dbt selectors for the marts the overview's queries ref and the models under them: the
    fixture builds only those."""
    noted = _Noted()
    for path in QUERIES.glob("*.sql"):
        render_query(path, noted)
    return [f"+{model}" for model in sorted(noted)]


@pytest.fixture(scope="module")
def warehouse_with_cohorts(
    pg_server, tmp_path_factory
) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    name = create_database(pg_server)
    url = pg_server.url(name)
    runs, reviews = generate()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            write_runs(conn, runs)
            with conn.cursor().copy(
                "copy raw.human_reviews (review_id, run_id, reviewer, verdict) from stdin"
            ) as copy:
                for run_id, reviewer, verdict in reviews:
                    copy.write_row((uuid.uuid4(), run_id, reviewer, verdict))
        config = load_config(REPO_ROOT / "evalhouse.yaml")
        target = tmp_path_factory.mktemp("dbt-target")
        result = run_dbt(
            ["run", "--quiet", "--select", *_read_by_the_overview()],
            env=dbt_env(url, config, target_path=target),
        )
        assert result.success, result.exception
        frame = pd.DataFrame([r.to_dict() for r in runs])
        frame["night"] = [_night(r) for r in runs]
        yield url, frame, pd.DataFrame(reviews, columns=["run_id", "reviewer", "verdict"])
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


def _night(run: RunRecord) -> date:
    """The day a row belongs to: a golden batch's night, a re-grade's audited night, else the
    day the call was made."""
    if run.batch_id and run.batch_id.startswith(("golden:", "sample:")):
        return date.fromisoformat(run.batch_id.split(":", 1)[1])
    return run.started_at.date()


def _page(db: WebDatabase, **query: str) -> dict:
    """The page's figures, through the page's own filters, queries and database layer."""
    return overview_figures(db.gather(overview_queries(parse_filters(**query), min_daily_n=30)))


def _cohort(
    frame: pd.DataFrame,
    lo: date,
    hi: date,
    source: str,
    role: str,
    suite: str | None,
    prompt_version: str | None,
) -> pd.DataFrame:
    keep = frame["night"].between(lo, hi)
    if source != "all":
        keep &= frame["source"] == source
    if role == "graded":
        keep &= frame["role"] != "judge"
    elif role == "judge":
        keep &= frame["role"] == "judge"
    if suite:
        keep &= frame["suite"] == suite
    if prompt_version:
        keep &= frame["prompt_version"] == prompt_version
    return frame[keep]


def _counts(rows: pd.DataFrame) -> dict:
    ok = rows["status"] == "ok"
    verdicts = ok & rows["passed"].notna()
    return {
        "calls": len(rows),
        "verdicts": int(verdicts.sum()),
        "passed": int((verdicts & (rows["passed"] == True)).sum()),
        "failed": int(rows["status"].isin(["error", "timeout"]).sum()),
        "parse_errors": int((rows["status"] == "parse_error").sum()),
        "cost_usd": pytest.approx(float(rows["cost_usd"].sum()), abs=1e-9),
        "tokens": int(rows["input_tokens"].sum() + rows["output_tokens"].sum()),
    }


COMBINATIONS = list(
    itertools.product(
        SOURCES,
        ("graded", "judge", "all"),
        (None, SUITE),
        (None, "gp1"),
        ((None, None), (FIRST_NIGHT + timedelta(days=2), FIRST_NIGHT + timedelta(days=6))),
    )
)


def test_every_overview_figure_equals_an_independent_recomputation_for_every_cohort(
    warehouse_with_cohorts,
):
    url, frame, reviews = warehouse_with_cohorts
    db = WebDatabase(url)
    db.open()
    try:
        _check_every_cohort(db, frame, reviews)
    finally:
        db.close()


def _check_every_cohort(db: WebDatabase, frame: pd.DataFrame, reviews: pd.DataFrame) -> None:
    newest = frame["night"].max()
    estimates_shown = 0
    for source, role, suite, prompt, (date_from, date_to) in COMBINATIONS:
        query = {
            "source": source,
            "role": role,
            "suite": suite or "",
            "prompt_version": prompt or "",
            "date_from": str(date_from or ""),
            "date_to": str(date_to or ""),
        }
        figures = _page(db, **query)
        hi = date_to or newest
        lo = date_from or hi - timedelta(days=29)
        assert figures["window"] == (lo, hi), query
        rows = _cohort(frame, lo, hi, source, role, suite, prompt)
        previous = _cohort(
            frame,
            lo - (hi - lo + timedelta(days=1)),
            lo - timedelta(days=1),
            source,
            role,
            suite,
            prompt,
        )
        expected = _counts(rows)
        kpis = figures["kpis"]
        assert {key: kpis[key] for key in ("calls", "verdicts", "cost_usd", "tokens")} == {
            key: expected[key] for key in ("calls", "verdicts", "cost_usd", "tokens")
        }, query
        assert kpis["pass_rate"] == _rate(expected["passed"], expected["verdicts"]), query
        assert kpis["error_rate"] == _rate(
            expected["failed"] + expected["parse_errors"], expected["calls"]
        ), query
        assert (kpis["errors"], kpis["parse_errors"]) == (
            expected["failed"],
            expected["parse_errors"],
        ), query
        assert kpis["prev_calls"] == len(previous), query
        _assert_trend(figures["trend"], rows, query)
        _assert_stages(figures["stages"], rows, query)
        _assert_costs(figures, rows, _cohort(frame, lo, hi, "all", "all", suite, None), query)
        weeks = _cohort(
            frame,
            lo - timedelta(days=lo.weekday()),
            hi - timedelta(days=hi.weekday() - 6),
            source,
            role,
            suite,
            prompt,
        )
        _assert_agreement(kpis, weeks, reviews, query)
        _assert_golden(figures["golden"], frame, lo, hi, suite, prompt, query)
        shows_estimate = source == "production" and role == "graded" and suite is None
        _assert_production_estimate(
            figures["production_estimate"],
            frame if shows_estimate else frame.iloc[:0],
            lo,
            hi,
            prompt,
            query,
        )
        estimates_shown += len(figures["production_estimate"])
    assert estimates_shown == 4, "the production estimate was compared on real rows"


def _rate(successes: int, n: int) -> float | None:
    return pytest.approx(successes / n) if n else None


def _assert_trend(trend: list[dict], rows: pd.DataFrame, query: dict) -> None:
    got = {
        (r["run_date"], r["model"], r["prompt_version"]): (r["calls"], r["passed"]) for r in trend
    }
    expected = {}
    for (day, model, prompt), group in rows.groupby(
        ["night", "model", rows["prompt_version"].fillna("∅")]
    ):
        counts = _counts(group)
        expected[(day, model, None if prompt == "∅" else prompt)] = (
            counts["calls"],
            counts["passed"],
        )
    assert got == expected, query


def _assert_stages(stages: list[dict], rows: pd.DataFrame, query: dict) -> None:
    got = {
        (s["stage"], s["model"], s["prompt_version"]): (s["calls"], s["verdicts"], s["passed"])
        for s in stages
    }
    staged = rows[rows["stage"].notna()]
    expected = {}
    for (stage, model, prompt), group in staged.groupby(
        ["stage", "model", staged["prompt_version"].fillna("∅")]
    ):
        counts = _counts(group)
        expected[(stage, model, None if prompt == "∅" else prompt)] = (
            counts["calls"],
            counts["verdicts"],
            counts["passed"],
        )
    assert got == expected, query
    for stage in stages:
        if stage["verdicts"]:
            low, high = wilson_interval(stage["passed"], stage["verdicts"])
            assert (stage["ci_low"], stage["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def _assert_costs(
    figures: dict, rows: pd.DataFrame, every_source: pd.DataFrame, query: dict
) -> None:
    got = {
        (c["model"], c["role"]): (c["calls"], pytest.approx(c["cost_usd"], abs=1e-9))
        for c in figures["costs"]
    }
    expected = {
        key: (len(group), pytest.approx(float(group["cost_usd"].sum()), abs=1e-9))
        for key, group in rows.groupby(["model", "role"])
    }
    assert got == expected, query
    by_source = {c["source"]: c["calls"] for c in figures["cost_by_source"]}
    assert by_source == every_source.groupby("source").size().to_dict(), query


def _assert_agreement(kpis: dict, rows: pd.DataFrame, reviews: pd.DataFrame, query: dict) -> None:
    """Agreement with the strict-majority human label, over reviewed settled calls of the
    cohort in the weeks the window touches (the mart is weekly, so whole weeks count)."""
    votes = reviews.groupby(["run_id", "verdict"]).size().rename("n").reset_index()
    totals = votes.groupby("run_id")["n"].transform("sum")
    consensus = votes[votes["n"] * 2 > totals].set_index("run_id")["verdict"]
    settled = rows[
        rows["status"].isin(["ok", "parse_error"]) & rows["run_id"].isin(consensus.index)
    ]
    labels = settled["verdict"].where(settled["status"] == "ok", "<parse_error>")
    agree = int((labels.values == consensus.loc[settled["run_id"]].values).sum())
    assert kpis["agreement_n"] == len(settled), query
    assert kpis["agreement"] == _rate(agree, len(settled)), query


def _assert_golden(
    golden: list[dict],
    frame: pd.DataFrame,
    lo: date,
    hi: date,
    suite: str | None,
    prompt: str | None,
    query: dict,
) -> None:
    """Golden accuracy: each settled candidate answer is correct when the judge's verdict on it
    passes (a parse error, or an answer left unjudged, is not); per model and prompt on the newest
    night of the window, never pooled over nights."""
    candidates = frame[
        (frame["source"] == "golden")
        & (frame["role"] == "candidate")
        & frame["status"].isin(["ok", "parse_error"])
        & frame["night"].between(lo, hi)
    ]
    if suite:
        candidates = candidates[candidates["suite"] == suite]
    if prompt:
        candidates = candidates[candidates["prompt_version"] == prompt]
    judges = frame[
        (frame["source"] == "golden") & (frame["role"] == "judge") & (frame["status"] == "ok")
    ].set_index("parent_run_id")["passed"]
    expected = {}
    for (model, version), group in candidates.groupby(["model", "prompt_version"]):
        newest = group[group["night"] == group["night"].max()]
        correct = sum(bool(judges.get(run_id, False)) for run_id in newest["run_id"])
        expected[(model, version)] = (newest["night"].iloc[0], len(newest), correct)
    got = {
        (g["model"], g["prompt_version"]): (g["night"], g["n_items"], g["correct"]) for g in golden
    }
    assert got == expected, query


def _assert_production_estimate(
    estimates: list[dict], frame: pd.DataFrame, lo: date, hi: date, prompt: str | None, query: dict
) -> None:
    """The judge's view of a whole production day from its sample: per stage (the stratum),
    the judge's pass rate among the sampled calls it gave a verdict, weighted by the stage's
    population of settled production calls (Hájek); strata without a verdict are left out."""
    population = frame[
        (frame["source"] == "production")
        & (frame["role"] == "grader")
        & (frame["status"] == "ok")
        & frame["night"].between(lo, hi)
    ]
    if prompt:
        population = population[population["prompt_version"] == prompt]
    judged = frame[
        (frame["source"] == "production_sample")
        & (frame["status"] == "ok")
        & frame["passed"].notna()
        & frame["parent_run_id"].isin(population["run_id"])
    ]
    expected = {}
    if len(judged):
        day = population.set_index("run_id").loc[judged["parent_run_id"], "night"].max()
        todays = population[population["night"] == day]
        for (model, version), cohort in todays.groupby(["model", "prompt_version"]):
            verdicts = judged.set_index("parent_run_id").reindex(cohort["run_id"])
            for (judge, judge_prompt), sample in judged[
                judged["parent_run_id"].isin(cohort["run_id"])
            ].groupby(["model", "prompt_version"]):
                of_judge = verdicts[
                    (verdicts["model"] == judge) & (verdicts["prompt_version"] == judge_prompt)
                ]
                weighted, covered = 0.0, 0
                for _, stratum in cohort.groupby("stage"):
                    passes = of_judge["passed"].reindex(stratum["run_id"]).dropna()
                    if len(passes):
                        weighted += len(stratum) * passes.astype(bool).mean()
                        covered += len(stratum)
                expected[(day, model, version, judge, judge_prompt)] = (
                    len(sample),
                    pytest.approx(weighted / covered),
                    pytest.approx(cohort["passed"].astype(bool).mean()),
                )
    got = {
        (
            e["run_date"],
            e["app_model"],
            e["app_prompt_version"],
            e["judge_model"],
            e["judge_prompt_version"],
        ): (e["n_sampled_with_verdict"], e["judge_pass_rate_estimate"], e["app_pass_rate"])
        for e in estimates
    }
    assert got == expected, query
    for estimate in estimates:
        assert (
            estimate["judge_pass_rate_ci_low"]
            <= estimate["judge_pass_rate_estimate"]
            <= estimate["judge_pass_rate_ci_high"]
        ), query
