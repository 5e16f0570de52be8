"""The production estimate from the stratified sample is right and its interval covers.

Two tests: a generated run log (production grading calls, their re-grades by two judge prompt
versions, failed and unparsable re-grades, a day with two app prompt versions) goes through
real `dbt build`, and fct_production_estimate_daily must equal a pandas recomputation; then
1,000 simulated days with known population rates go through the mart's compiled SQL (its input,
the per-stratum counts of int_production_sample_strata, replaced by the simulated samples'
counts) and the estimate must be unbiased and its 95 % interval cover in 93–97 % of days.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from reference_stats import Z95, design_wilson

from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.runlog import RunRecord, idempotency_key, write_runs

DAYS = [date(2026, 11, 2) + timedelta(days=i) for i in range(4)]
VERDICTS = ["pass", "revise", "fail"]
TOL = 1e-9
EPOCH = [
    "app_model",
    "app_prompt_name",
    "app_prompt_version",
    "judge_model",
    "judge_prompt_name",
    "judge_prompt_version",
]


def _at(rng: random.Random, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(86_000)
    )


def _run_log(seed: int) -> tuple[list[RunRecord], list[RunRecord]]:
    """(production calls and early re-grades, re-grades of the last day written later)."""
    rng = random.Random(seed)
    runs: list[RunRecord] = []
    late: list[RunRecord] = []
    # (stage, population size, drawn): one stratum drawn whole, one with a single draw
    strata = [
        ("variables", 60, 8),
        ("loops", 25, 8),
        ("functions", 12, 8),
        (None, 4, 4),
        ("classes", 5, 1),
    ]
    for n_day, day in enumerate(DAYS):
        for stage, size, drawn in strata:
            calls = []
            for i in range(size):
                version = "gp2" if n_day == 2 and i % 2 else "gp1"
                verdict = rng.choice(VERDICTS)
                call = RunRecord(
                    idempotency_key=idempotency_key("prod", day, stage, i),
                    source="production",
                    role="grader",
                    model="tutor-small",
                    started_at=_at(rng, day),
                    status="ok",
                    stage=stage,
                    prompt_name="grader",
                    prompt_version=version,
                    verdict=verdict,
                    passed=verdict == "pass",
                )
                calls.append(call)
            # not in the population: a failed call and an unparsable one
            runs += calls + [
                RunRecord(
                    idempotency_key=idempotency_key("prod-x", day, stage, s),
                    source="production",
                    role="grader",
                    model="tutor-small",
                    started_at=_at(rng, day),
                    status=s,
                    stage=stage,
                    prompt_name="grader",
                    prompt_version="gp1",
                )
                for s in ("error", "parse_error")
            ]
            judges = [("judge", "jp1"), ("judge", "jp2")] if n_day == 1 else [("judge", "jp1")]
            for call in rng.sample(calls, drawn):
                for model, version in judges:
                    out = late if n_day == len(DAYS) - 1 else runs
                    key = idempotency_key("sample", call.run_id, model, version)
                    when = _at(rng, day + timedelta(days=1))
                    common = dict(
                        idempotency_key=key,
                        source="production_sample",
                        role="judge",
                        model=model,
                        prompt_name="judge",
                        prompt_version=version,
                        parent_run_id=call.run_id,
                        stage=stage,
                        sample_weight=size / drawn,
                    )
                    if rng.random() < 0.15 or (stage == "functions" and n_day == 0):
                        out.append(RunRecord(started_at=when, status="error", **common))
                        if stage == "functions" and n_day == 0:
                            continue  # the stratum's re-grades all failed: not covered
                        when += timedelta(seconds=5)
                    if rng.random() < 0.08:
                        out.append(RunRecord(started_at=when, status="parse_error", **common))
                        continue
                    verdict = call.verdict if rng.random() < 0.7 else rng.choice(VERDICTS)
                    out.append(
                        RunRecord(
                            started_at=when,
                            status="ok",
                            verdict=verdict,
                            passed=verdict == "pass",
                            **common,
                        )
                    )
    return runs, late


def _frame(url: str, sql: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description], dtype=object)


def _stratified(strata: pd.DataFrame, successes: str) -> tuple[float, float, float, float]:
    """Hájek estimate, its stratified SE with FPC and the design-effect Wilson 95 % interval,
    from per-stratum N, n and successes."""
    covered = strata[strata["n"] > 0]
    big_n, n, k = (covered[c].to_numpy(float) for c in ("N", "n", successes))
    if not len(covered):
        return np.nan, np.nan, np.nan, np.nan
    p = k / n
    s2 = np.where(n > 1, p * (1 - p) * n / np.maximum(n - 1, 1), 0.25)
    total = big_n.sum()
    estimate = (big_n * p).sum() / total
    terms = big_n**2 * (1 - n / big_n) * s2 / n
    se = np.sqrt(terms.sum()) / total
    df = terms.sum() ** 2 / (terms**2 / np.maximum(n - 1, 1)).sum() if terms.sum() > 0 else np.nan
    return (estimate, se, *design_wilson(estimate, se, df, n.sum(), exact=bool((n == big_n).all())))


def _expected(url: str) -> pd.DataFrame:
    runs = _frame(
        url,
        "select run_id, parent_run_id, source, role, model, prompt_name, prompt_version, status,"
        " verdict, passed, stage, trial, started_at from raw.eval_runs",
    )
    runs["day"] = pd.to_datetime(runs["started_at"], utc=True).dt.date
    population = runs[
        (runs["source"] == "production") & (runs["role"] == "grader") & (runs["status"] == "ok")
    ]
    population = population.assign(stratum=population["stage"].fillna("(none)"))
    regrades = runs[runs["source"] == "production_sample"].copy()
    regrades["has_verdict"] = (regrades["status"] == "ok") & regrades["passed"].notna()
    regrades = regrades.sort_values(
        ["has_verdict", "trial", "started_at", "run_id"], ascending=[False, True, True, True]
    )
    regrades = regrades.groupby(["parent_run_id", "model", "prompt_name", "prompt_version"]).head(1)
    joined = regrades.merge(
        population, left_on="parent_run_id", right_on="run_id", suffixes=("_j", "")
    )
    rows = []
    for keys, cohort in population.groupby(["day", "model", "prompt_name", "prompt_version"]):
        judged = joined[
            (joined["day"] == keys[0])
            & (joined["model"] == keys[1])
            & (joined["prompt_version"] == keys[3])
        ]
        for judge, by_judge in judged.groupby(["model_j", "prompt_name_j", "prompt_version_j"]):
            strata = []
            for stratum, calls in cohort.groupby("stratum"):
                sampled = by_judge[by_judge["stratum"] == stratum]
                graded = sampled[sampled["has_verdict"]]
                strata.append(
                    {
                        "stage": stratum,
                        "N": len(calls),
                        "n_sampled": len(sampled),
                        "n": len(graded),
                        "passed": int((graded["passed_j"] == True).sum()),
                        "disagree": int((graded["verdict_j"] != graded["verdict"]).sum()),
                        "app_passed": int((calls["passed"] == True).sum()),
                        "app_n": len(calls),
                    }
                )
            strata = pd.DataFrame(strata)
            groups = [(s, strata[strata["stage"] == s]) for s in strata["stage"]] + [
                ("(all)", strata)
            ]
            for stage, group in groups:
                estimate, se, low, high = _stratified(group, "passed")
                disagreement, disagreement_se, d_low, d_high = _stratified(group, "disagree")
                rows.append(
                    {
                        "run_date": keys[0],
                        "stage": stage,
                        **dict(zip(EPOCH, [*keys[1:], *judge], strict=True)),
                        "n_population": group["N"].sum(),
                        "n_sampled": group["n_sampled"].sum(),
                        "n_sampled_with_verdict": group["n"].sum(),
                        "n_population_uncovered": group.loc[group["n"] == 0, "N"].sum(),
                        "app_pass_rate": group["app_passed"].sum() / group["app_n"].sum(),
                        "judge_pass_rate_estimate": estimate,
                        "judge_pass_rate_se": se,
                        "judge_pass_rate_ci_low": low,
                        "judge_pass_rate_ci_high": high,
                        "disagreement_rate_estimate": disagreement,
                        "disagreement_rate_se": disagreement_se,
                        "disagreement_rate_ci_low": d_low,
                        "disagreement_rate_ci_high": d_high,
                    }
                )
    return pd.DataFrame(rows)


def test_the_estimate_mart_equals_an_independent_computation_after_late_regrades(
    warehouse_url, tmp_path
):
    env = {
        **dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "target"),
        "EVALHOUSE_DBT_INCREMENTAL_LOOKBACK_MINUTES": "0",
    }
    runs, late = _run_log(seed=7)
    select = [
        "build",
        "--select",
        "+fct_production_estimate_daily",
        "--indirect-selection",
        "cautious",
    ]
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, runs)
    assert run_dbt(select, env=env).success
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, late)  # the last day's re-grades arrive the next night
    result = run_dbt(select, env=env)
    assert result.success, [
        f"{r.node.name}: {r.message}"
        for r in result.result
        if str(r.status) not in ("success", "pass")
    ]

    mart = _frame(warehouse_url, "select * from marts.fct_production_estimate_daily")
    expected = _expected(warehouse_url)
    keys = ["run_date", "stage", *EPOCH]
    got = mart.set_index(keys).sort_index()
    want = expected.set_index(keys).sort_index()
    assert got.index.equals(want.index)
    for column in want.columns:
        a, b = got[column].astype(float).to_numpy(), want[column].astype(float).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        tolerance = 1e-6 if "_ci_" in column else TOL  # the SQL's t quantile past df 30 is a series
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=tolerance, rtol=0), column
    # the cases the log was built to contain
    assert set(mart["app_prompt_version"]) == {"gp1", "gp2"} and set(
        mart["judge_prompt_version"]
    ) == {"jp1", "jp2"}
    assert len(mart[mart["run_date"] == DAYS[-1]]) == 6, "the late re-grades' day was recomputed"
    uncovered = mart[(mart["run_date"] == DAYS[0]) & (mart["stage"] == "functions")].iloc[0]
    assert (uncovered["n_population_uncovered"], uncovered["judge_pass_rate_estimate"]) == (
        12,
        None,
    )
    census = mart[(mart["stage"] == "(none)") & (mart["n_sampled_with_verdict"] == 4)]
    assert (census["judge_pass_rate_se"] == 0).all() and len(census) > 0, (
        "a stratum seen whole has no error"
    )


# -- 1,000 simulated days through the mart's SQL ----------------------------------------------


def _simulated_strata(n_days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-stratum counts of simulated samples, and each day's true population rates.

    Each day has five strata of very unequal size (lognormal, 10 to ~3,000 calls) and sampling
    fraction (a fixed 15 to 80 draws, a stratum smaller than its draw is taken whole), with
    their own true pass and disagreement rates. A population is drawn unit by unit; the sample
    is a simple random sample without replacement of each stratum (multivariate hypergeometric
    over the four pass × disagree outcomes).
    """
    rng = np.random.default_rng(seed)
    rows, truths = [], []
    for day in range(n_days):
        run_date = date(2024, 1, 1) + timedelta(days=day)
        population = passed = disagree = 0
        for stratum in range(5):
            size = int(np.clip(rng.lognormal(5.5, 1.2), 10, 5000))
            drawn = min(size, int(rng.integers(15, 81)))
            p_pass, p_disagree = rng.uniform(0.25, 0.9), rng.uniform(0.05, 0.35)
            outcomes = rng.multinomial(
                size,
                [
                    p_pass * p_disagree,
                    p_pass * (1 - p_disagree),
                    (1 - p_pass) * p_disagree,
                    (1 - p_pass) * (1 - p_disagree),
                ],
            )
            sample = rng.multivariate_hypergeometric(outcomes, drawn)
            rows.append(
                {
                    "run_date": run_date,
                    "stratum": f"s{stratum}",
                    "n_population": size,
                    "n_population_app_verdicts": size,
                    "n_population_app_passed": 0,
                    "n_sampled": drawn,
                    "n_sampled_with_verdict": drawn,
                    "n_judge_passed": int(sample[0] + sample[1]),
                    "n_judge_disagrees_with_app": int(sample[0] + sample[2]),
                }
            )
            population += size
            passed += outcomes[0] + outcomes[1]
            disagree += outcomes[0] + outcomes[2]
        truths.append(
            {
                "run_date": run_date,
                "true_pass_rate": passed / population,
                "true_disagreement_rate": disagree / population,
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(truths)


def test_the_estimate_is_unbiased_and_its_interval_covers_on_1000_simulated_days(
    warehouse_url, tmp_path
):
    env = dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "target")
    assert run_dbt(
        ["--quiet", "compile", "--select", "fct_production_estimate_daily"], env=env
    ).success
    compiled = next(
        Path(tmp_path / "target" / "compiled").rglob("fct_production_estimate_daily.sql")
    ).read_text()
    strata, truth = _simulated_strata(1000, seed=2026)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("create schema if not exists intermediate")
        conn.execute(
            "create table intermediate.int_production_sample_strata (run_date date, stratum text,"
            " app_model text, app_prompt_name text, app_prompt_version text, judge_model text,"
            " judge_prompt_name text, judge_prompt_version text, n_population bigint,"
            " n_population_app_verdicts bigint, n_population_app_passed bigint, n_sampled bigint,"
            " n_sampled_with_verdict bigint, n_judge_passed bigint,"
            " n_judge_disagrees_with_app bigint, runs_loaded_through timestamptz)"
        )
        with conn.cursor().copy(
            "copy intermediate.int_production_sample_strata (run_date, stratum, app_model, judge_model,"
            " n_population, n_population_app_verdicts, n_population_app_passed, n_sampled,"
            " n_sampled_with_verdict, n_judge_passed, n_judge_disagrees_with_app) from stdin"
        ) as copy:
            for row in strata.itertuples(index=False):
                copy.write_row(
                    (
                        row.run_date,
                        row.stratum,
                        "app",
                        "judge",
                        row.n_population,
                        row.n_population_app_verdicts,
                        row.n_population_app_passed,
                        row.n_sampled,
                        row.n_sampled_with_verdict,
                        row.n_judge_passed,
                        row.n_judge_disagrees_with_app,
                    )
                )
        conn.commit()
    estimates = _frame(warehouse_url, f"select * from ({compiled}) as mart where is_all_stages")
    days = estimates.merge(truth, on="run_date")
    assert len(days) == 1000
    for rate, true in (
        ("judge_pass_rate", "true_pass_rate"),
        ("disagreement_rate", "true_disagreement_rate"),
    ):
        estimate, se, truth_ = (
            days[c].astype(float) for c in (f"{rate}_estimate", f"{rate}_se", true)
        )
        error = estimate - truth_
        covered = (days[f"{rate}_ci_low"].astype(float) <= truth_) & (
            truth_ <= days[f"{rate}_ci_high"].astype(float)
        )
        wald = (estimate - Z95 * se <= truth_) & (truth_ <= estimate + Z95 * se)
        print(
            f"{rate}: mean error {error.mean():+.5f}, coverage {covered.mean():.3f} (p ± 1.96 SE: {wald.mean():.3f})"
        )
        assert abs(error.mean()) < 0.005
        assert 0.93 <= covered.mean() <= 0.97
