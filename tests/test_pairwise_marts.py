"""The pairwise marts are right: simulated judgments (tests/pairwise_simulation.py) written as
run-log rows per the pairwise contract go through one real `dbt build`, and every figure of
fct_pairwise_ratings, fct_pairwise_matrix and fct_pairwise_judge_bias equals an independent
recomputation (Bradley–Terry by maximum likelihood in scipy, the rest in pandas). Third-party
judgments imported through the documented mapping give the same figures as the same verdicts
written as the runner's own rows.
"""

from __future__ import annotations

import csv
import hashlib
import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database
from pairwise_simulation import (
    STARTED,
    Design,
    bt_fit,
    run_records,
    simulate,
    win_weights,
)
from reference_stats import design_wilson
from scipy.stats import poisson

from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.importers import import_file, load_mapping
from evals.reviews import Review, write_reviews
from evals.runlog import supersede_imports, write_runs

EXAMPLES = REPO_ROOT / "docs" / "examples"
SUITE = "sim-pairs"
IMPORTED_SUITE = "pairwise-qa"  # the documented mapping's suite
DESIGN = Design(
    ratings={"alpha": 180.0, "beta": 60.0, "gamma": 0.0, "delta": -40.0, "eps@v2": -200.0},
    items=40,
    pairs_per_item=3,
    trials=2,
    biases=(0.1, 0.4),
    tie=0.15,
)
JUDGES = ("judge-x", "judge-y")
REPLICATES = 200
COHORT = ["suite", "suite_version", "source", "judge_model", "judge_prompt_version"]
PAIRWISE_MODELS = ["fct_pairwise_judge_bias", "fct_pairwise_ratings", "fct_pairwise_matrix"]


def _judgments(seed: int, design: Design) -> pd.DataFrame:
    """Simulated judgments with what real logs have: parse errors (verdict None), items judged
    in the first order only."""
    rng = np.random.default_rng(seed)
    frame = simulate(rng, design)
    frame.loc[rng.random(len(frame)) < 0.04, "verdict"] = None
    one_order = frame["item_id"].isin({f"i{k:04d}" for k in range(4, design.items, 9)})
    return frame[~(one_order & (frame["position"] == "ba"))].reset_index(drop=True)


def _reviews(frame: pd.DataFrame, records, seed: int) -> list[tuple]:
    """Human labels of every fourth item's first judgment of each pair: a clear majority, or a
    split panel (no label) on every third reviewed pair."""
    rng = np.random.default_rng(seed)
    reviews = []
    for row, record in zip(frame.itertuples(), records, strict=True):
        if int(row.item_id[1:]) % 4 or row.position != "ab" or row.trial != 0:
            continue
        label = rng.choice(["a", "b", "tie"])
        panel = (
            [label, label, "tie"] if rng.random() < 0.67 else [label, "b" if label == "a" else "a"]
        )
        reviews += [(uuid.uuid4(), record.run_id, f"r{k}", v) for k, v in enumerate(panel)]
    return reviews


def _third_party_csv(frame: pd.DataFrame, path: Path, labels: dict[int, list[str]]) -> None:
    """The judgments as a spreadsheet in the example's columns (docs/examples): verdicts
    written 1 / "2" / Tie / TIE, garbled text for a parse error."""
    spelled = {"a": ["1"], "b": ["2"], "tie": ["Tie", "TIE", "tie"]}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "item_id",
                "question",
                "model_a",
                "model_b",
                "order",
                "trial",
                "judge",
                "judge_says",
                "judged_at",
                "latency_s",
                "tokens_in",
                "tokens_out",
                "cost",
                "label_ana",
                "label_ben",
            ]
        )
        for number, row in enumerate(frame.itertuples()):
            says = (
                spelled[row.verdict][number % len(spelled[row.verdict])]
                if isinstance(row.verdict, str)
                else "can't tell, both fine"
            )
            ana, ben = labels.get(number, ["", ""])
            writer.writerow(
                [
                    row.item_id,
                    f"question {row.item_id}",
                    row.contestant_a,
                    row.contestant_b,
                    row.position,
                    row.trial,
                    "judge-x",
                    says,
                    (STARTED + timedelta(seconds=number)).strftime("%Y-%m-%d %H:%M:%S"),
                    1.5,
                    300,
                    40,
                    0.0001,
                    ana,
                    ben,
                ]
            )


@pytest.fixture(scope="module")
def built(pg_server, tmp_path_factory):
    """One warehouse: two judges on one simulated suite, and a third-party file imported beside
    the same verdicts written natively; one dbt build of the pairwise marts."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    frames, reviews = {}, []
    with psycopg.connect(url) as conn:
        for seed, judge in enumerate(JUDGES):
            frame = _judgments(seed, DESIGN)
            records = run_records(frame, suite=SUITE, judge=judge)
            write_runs(conn, records)
            reviews += _reviews(frame, records, seed)
            frames[judge] = frame
        third_party = _judgments(7, Design(**{**DESIGN.__dict__, "items": 15}))
        labels = {k: ["1", "1"] if k % 3 else ["Tie", "2"] for k in range(0, len(third_party), 5)}
        native = run_records(
            third_party,
            suite=IMPORTED_SUITE,
            judge="judge-x",
            suite_version=None,
            prompt_version=None,
            batch_id="golden:2026-11-02",
        )
        write_runs(conn, native)
        as_verdict = {"1": "a", "2": "b", "Tie": "tie"}
        for k, (ana, ben) in labels.items():
            reviews += [
                (uuid.uuid4(), native[k].run_id, "ana", as_verdict[ana]),
                (uuid.uuid4(), native[k].run_id, "ben", as_verdict[ben]),
            ]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.human_reviews (review_id, run_id, reviewer, verdict, reviewed_at)"
                " values (%s, %s, %s, %s, now())",
                reviews,
            )
    source = tmp_path_factory.mktemp("import") / "arena_judgments.csv"
    _third_party_csv(third_party, source, labels)
    with psycopg.connect(url, autocommit=True) as conn:
        report = import_file(conn, source, load_mapping(EXAMPLES / "pairwise_mapping.yaml"))
    assert (report.imported, report.issues) == (len(third_party), [])

    env = dbt_env(url=url, config=Config(), target_path=tmp_path_factory.mktemp("dbt_target"))
    result = run_dbt(
        [
            "build",
            "--select",
            *(f"+{model}" for model in PAIRWISE_MODELS),
            "--indirect-selection",
            "cautious",
        ],
        env=env,
    )
    assert result.success, [
        f"{r.node.name}: {r.message}"
        for r in result.result
        if str(r.status) not in ("success", "pass")
    ]
    marts = {}
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for model in [*PAIRWISE_MODELS, "int_pairwise_rating_fits"]:
            schema = "intermediate" if model.startswith("int_") else "marts"
            cur.execute(f"select * from {schema}.{model}")
            marts[model] = pd.DataFrame(
                cur.fetchall(), columns=[c.name for c in cur.description], dtype=object
            )
        runs = pd.DataFrame(
            conn.execute(
                "select e.run_id, e.model, r.reviewer, r.verdict"
                " from raw.eval_runs e join raw.human_reviews r using (run_id)"
                " where e.suite = %s",
                (SUITE,),
            ).fetchall(),
            columns=["run_id", "judge", "reviewer", "label"],
        )
    yield {"url": url, "frames": frames, "marts": marts, "reviews": runs}
    drop_database(pg_server, name)


def _cohort(frame: pd.DataFrame, judge: str, suite: str = SUITE) -> pd.DataFrame:
    rows = frame[(frame["judge_model"] == judge) & (frame["suite"] == suite)]
    return rows[rows["source"] == "golden"]


# -- ratings and matrix ------------------------------------------------------------------------


def test_ratings_equal_a_maximum_likelihood_fit_and_records_are_exact(built):
    for judge, frame in built["frames"].items():
        mart = _cohort(built["marts"]["fct_pairwise_ratings"], judge).set_index("contestant")
        expected = bt_fit(win_weights(frame))
        assert sorted(mart.index) == sorted(expected)
        for contestant, rating in expected.items():
            assert float(mart.loc[contestant, "rating"]) == pytest.approx(rating, abs=1e-6)
        assert float(mart["rating"].astype(float).sum()) == pytest.approx(0.0, abs=1e-9)
        assert float(mart["fit_max_step"].max()) < 1e-9
        by_rating = sorted(expected, key=expected.get, reverse=True)
        assert list(mart.sort_values("rank").index) == by_rating
        parsed = frame[frame["verdict"].notna()]
        for contestant in expected:
            as_a = parsed[parsed["contestant_a"] == contestant]["verdict"]
            as_b = parsed[parsed["contestant_b"] == contestant]["verdict"]
            wins = int((as_a == "a").sum() + (as_b == "b").sum())
            ties = int((as_a == "tie").sum() + (as_b == "tie").sum())
            losses = int((as_a == "b").sum() + (as_b == "a").sum())
            items = parsed[
                (parsed["contestant_a"] == contestant) | (parsed["contestant_b"] == contestant)
            ]["item_id"].nunique()
            row = mart.loc[contestant]
            assert (row["wins"], row["ties"], row["losses"]) == (wins, ties, losses)
            assert (row["comparisons"], row["items"]) == (wins + ties + losses, items)
            assert row["bootstrap_replicates"] == REPLICATES
            assert row["has_finite_rating"] is True
            assert row["rating_ci_low"] < row["rating"] < row["rating_ci_high"]


def test_the_matrix_counts_every_pair_and_its_coverage(built):
    for judge, frame in built["frames"].items():
        mart = _cohort(built["marts"]["fct_pairwise_matrix"], judge).set_index(
            ["contestant", "opponent"]
        )
        ratings = bt_fit(win_weights(frame))
        parsed = frame[frame["verdict"].notna()]
        judged_items = parsed["item_id"].nunique()
        expected_pairs = set()
        for x, y in combinations(sorted(ratings), 2):
            forward = parsed[(parsed["contestant_a"] == x) & (parsed["contestant_b"] == y)]
            backward = parsed[(parsed["contestant_a"] == y) & (parsed["contestant_b"] == x)]
            x_wins = int((forward["verdict"] == "a").sum() + (backward["verdict"] == "b").sum())
            y_wins = int((forward["verdict"] == "b").sum() + (backward["verdict"] == "a").sum())
            ties = int((forward["verdict"] == "tie").sum() + (backward["verdict"] == "tie").sum())
            items = pd.concat([forward, backward])["item_id"].nunique()
            if not items:
                continue
            expected_pairs |= {(x, y), (y, x)}
            for me, them, wins, losses in ((x, y, x_wins, y_wins), (y, x, y_wins, x_wins)):
                row = mart.loc[(me, them)]
                assert (row["wins"], row["ties"], row["losses"]) == (wins, ties, losses)
                assert float(row["win_rate"]) == pytest.approx(
                    (wins + ties / 2) / (wins + ties + losses), abs=1e-12
                )
                assert (row["items"], row["suite_items"]) == (items, judged_items)
                assert float(row["coverage"]) == pytest.approx(items / judged_items, abs=1e-12)
                assert float(row["rating_difference"]) == pytest.approx(
                    ratings[me] - ratings[them], abs=1e-6
                )
                assert row["rating_difference_ci_low"] < row["rating_difference"]
                assert row["rating_difference"] < row["rating_difference_ci_high"]
        assert set(mart.index) == expected_pairs


def _poisson_one(key: str) -> int:
    """The macro poisson_one_draw, from its definition: the uniform of md5's first 52 bits
    through Poisson(1)'s inverse CDF."""
    uniform = int(hashlib.md5(key.encode()).hexdigest()[:13], 16) / 2**52
    return int(np.searchsorted(poisson.cdf(np.arange(11), 1.0), uniform, side="right"))


def test_a_bootstrap_replicate_is_the_fit_on_items_weighted_by_their_hashed_poisson_draw(built):
    fits = built["marts"]["int_pairwise_rating_fits"]
    ratings = built["marts"]["fct_pairwise_ratings"]
    judge = "judge-x"
    cohort_key = _cohort(ratings, judge)["cohort_key"].iloc[0]
    frame = built["frames"][judge]
    for replicate in (1, 17):
        weight = pd.Series(
            [_poisson_one(f"{SUITE}|v1|{item}|{replicate}") for item in frame["item_id"]],
            index=frame.index,
        )
        wins = win_weights(frame)
        wins = wins.assign(weight=wins["weight"] * weight.loc[wins.index].to_numpy())
        expected = bt_fit(wins[wins["weight"] > 0])
        got = fits[(fits["cohort_key"] == cohort_key) & (fits["replicate"] == replicate)]
        got = got.set_index("contestant")["rating"].astype(float)
        assert sorted(got.index) == sorted(expected)
        for contestant, rating in expected.items():  # replicates converge to 1e-6 per step
            assert got[contestant] == pytest.approx(rating, abs=1e-4)
    draws = [_poisson_one(f"{SUITE}|v1|i0001|{r}") for r in range(1, 2001)]
    assert np.mean(draws) == pytest.approx(1.0, abs=0.07)  # Poisson(1): mean 1, variance 1


# -- position bias, consistency, human agreement ------------------------------------------------

SLOT_SCORE = {"ab": {"a": 1, "b": -1, "tie": 0}, "ba": {"a": -1, "b": 1, "tie": 0}}


def _clustered_ratio(per_item: pd.DataFrame, numerator: str, denominator: str) -> tuple:
    """Ratio over items, its cluster-robust SE and Wilson interval at the effective size."""
    items = per_item[per_item[denominator] > 0]
    n = len(items)
    p = items[numerator].sum() / items[denominator].sum()
    se = (
        math.sqrt(((items[numerator] - p * items[denominator]) ** 2).sum() * n / (n - 1))
        / items[denominator].sum()
    )
    return p, se, *design_wilson(p, se, n - 1, n)


def _expected_bias(frame: pd.DataFrame, human: dict[tuple, str | None]) -> dict:
    frame = frame.assign(label=frame["verdict"].fillna("<unparsed>"))
    trials = frame.pivot_table(
        index=["item_id", "contestant_a", "contestant_b", "trial"],
        columns="position",
        values="label",
        aggfunc="first",
    ).dropna()
    trials["consistent"] = (trials["ab"] == trials["ba"]) & (trials["ab"] != "<unparsed>")
    parsed = (trials["ab"] != "<unparsed>") & (trials["ba"] != "<unparsed>")
    trials["inconsistent"] = parsed & (trials["ab"] != trials["ba"])
    score = trials["ab"].map(SLOT_SCORE["ab"]).fillna(0) + trials["ba"].map(
        SLOT_SCORE["ba"]
    ).fillna(0)
    trials["first"] = trials["inconsistent"] & (score > 0)
    assert (score[trials["inconsistent"]] != 0).all()
    per_item = trials.groupby(level="item_id")[["consistent", "inconsistent", "first"]].sum()
    per_item["pairs"] = trials.groupby(level="item_id").size()
    consistency = _clustered_ratio(per_item, "consistent", "pairs")
    bias = _clustered_ratio(per_item, "first", "inconsistent")
    pair_of = list(zip(frame["item_id"], frame["contestant_a"], frame["contestant_b"], strict=True))
    frame = frame.assign(human=[human.get(p) for p in pair_of])
    ok = frame[frame["verdict"].notna()]
    labelled = frame[frame["human"].notna()]
    consistent = trials[trials["consistent"]].reset_index()
    consistent["human"] = [
        human.get((r.item_id, r.contestant_a, r.contestant_b)) for r in consistent.itertuples()
    ]
    consistent = consistent[consistent["human"].notna()]
    return {
        "items": frame["item_id"].nunique(),
        "judgments": len(frame),
        "parse_errors": int(frame["verdict"].isna().sum()),
        "items_both_orders": len(per_item),
        "pairs_both_orders": len(trials),
        "a_rate_first_order": (ok[ok["position"] == "ab"]["verdict"] == "a").mean(),
        "a_rate_swapped_order": (ok[ok["position"] == "ba"]["verdict"] == "a").mean(),
        "consistent_pairs": int(trials["consistent"].sum()),
        "consistency_rate": consistency[0],
        "consistency_se_clustered": consistency[1],
        "consistency_ci_low": consistency[2],
        "consistency_ci_high": consistency[3],
        "inconsistent_pairs": int(trials["inconsistent"].sum()),
        "first_slot_pairs": int(trials["first"].sum()),
        "items_inconsistent": int((per_item["inconsistent"] > 0).sum()),
        "position_bias": bias[0],
        "position_bias_se_clustered": bias[1],
        "position_bias_ci_low": bias[2],
        "position_bias_ci_high": bias[3],
        "human_labelled_first": int((labelled["position"] == "ab").sum()),
        "human_agreement_first": (
            labelled[labelled["position"] == "ab"]["verdict"]
            == labelled[labelled["position"] == "ab"]["human"]
        ).mean(),
        "human_labelled_swapped": int((labelled["position"] == "ba").sum()),
        "human_agreement_swapped": (
            labelled[labelled["position"] == "ba"]["verdict"]
            == labelled[labelled["position"] == "ba"]["human"]
        ).mean(),
        "human_labelled_consistent": len(consistent),
        "human_agreement_consistent": (consistent["ab"] == consistent["human"]).mean(),
        "reviewed_items": len({p[0] for p in human}),
        "pairs_without_human_majority": sum(label is None for label in human.values()),
    }


def test_the_judge_bias_mart_equals_an_independent_computation(built):
    for judge, frame in built["frames"].items():
        reviews = built["reviews"][built["reviews"]["judge"] == judge]
        with psycopg.connect(built["url"]) as conn:
            written = conn.execute(
                "select run_id, item_id, attributes ->> 'contestant_a',"
                " attributes ->> 'contestant_b' from raw.eval_runs where model = %s and suite = %s",
                (judge, SUITE),
            ).fetchall()
        pairs = {run_id: (item, a, b) for run_id, item, a, b in written}
        human = {}
        for run_id, group in reviews.groupby("run_id"):
            label, count = Counter(group["label"]).most_common(1)[0]
            human[pairs[run_id]] = label if count * 2 > len(group) else None
        expected = _expected_bias(frame, human)
        row = _cohort(built["marts"]["fct_pairwise_judge_bias"], judge).iloc[0]
        for column, value in expected.items():
            tolerance = 1e-6 if "_ci_" in column else 1e-9  # the SQL's t past df 30 is a series
            assert float(row[column]) == pytest.approx(float(value), abs=tolerance), column
        assert row["a_rate_first_order"] > row["a_rate_swapped_order"]  # the injected bias
        assert row["position_bias_ci_low"] > 0.5


# -- imports read like the runner's rows --------------------------------------------------------


def test_imported_judgments_give_the_same_figures_as_the_same_verdicts_run_natively(built):
    keys = {
        "fct_pairwise_judge_bias": [],
        "fct_pairwise_ratings": ["contestant"],
        "fct_pairwise_matrix": ["contestant", "opponent"],
    }
    for model, key in keys.items():
        mart = built["marts"][model]
        mart = mart[mart["suite"] == IMPORTED_SUITE].drop(columns=["cohort_key"])
        imported, native = (
            mart[mart["source"] == source].drop(columns=["source"]).sort_values(key or "suite")
            for source in ("import", "golden")
        )
        assert len(imported) == len(native) > 0, model
        for column in imported.columns:
            a, b = imported[column].to_list(), native[column].to_list()
            if column.endswith(("_at",)) or not all(isinstance(v, float) for v in a + b):
                assert a == b, (model, column)
            else:
                assert a == pytest.approx(b, abs=1e-9), (model, column)
    bias = built["marts"]["fct_pairwise_judge_bias"]
    imported = bias[(bias["suite"] == IMPORTED_SUITE) & (bias["source"] == "import")].iloc[0]
    assert imported["human_labelled_first"] + imported["human_labelled_swapped"] > 0
    assert imported["parse_errors"] > 0 and imported["pairs_both_orders"] > 0


# -- incremental builds ------------------------------------------------------------------------

LABELS = ["int_human_consensus", "int_pairwise_judgments"]


def _table(url: str, model: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from intermediate.{model} order by run_id")
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def test_an_incremental_build_of_the_labels_equals_a_full_refresh(pg_server, tmp_path):
    """Night 1: judgments and reviews. Night 2: second trials of four items' pairs, a new
    review, a re-review that splits a panel, a panel whose verdicts are all withdrawn, a
    judgment superseded by a corrected import. The
    incremental build (no look-back) rewrites only the runs and pairs those touch, and equals a
    full refresh of both models."""
    name = create_database(pg_server)
    url = pg_server.url(name)
    frame = _judgments(3, Design(**{**DESIGN.__dict__, "items": 12}))
    records = run_records(frame, suite=SUITE, source="import")
    item = frame["item_id"].str[1:].astype(int).to_numpy()
    night = np.where((frame["trial"] == 1) & (item < 4), 2, 1)
    first = [r for r, n in zip(records, night, strict=True) if n == 1]
    later_items = [r for r, k in zip(records, item, strict=True) if k >= 6]
    reviewed, gone = later_items[0:30:3], later_items[1]
    fresh, split, withdrawn = first[-1], reviewed[0], reviewed[1]
    t1, t2 = (datetime(2026, 11, d, tzinfo=UTC) for d in (2, 3))
    env = {
        **dbt_env(url=url, config=Config(), target_path=tmp_path),
        "EVALHOUSE_DBT_INCREMENTAL_LOOKBACK_MINUTES": "0",
    }
    select = ["--select", "+int_pairwise_judgments"]
    try:
        with psycopg.connect(url) as conn:
            write_runs(conn, first)
            write_reviews(
                conn,
                [Review(r.run_id, f"r{k}", "a", reviewed_at=t1) for r in reviewed for k in (0, 1)],
            )
        assert run_dbt(["run", "--quiet", *select], env=env).success
        with psycopg.connect(url) as conn:
            write_runs(conn, [r for r, n in zip(records, night, strict=True) if n == 2])
            write_reviews(
                conn,
                [
                    Review(fresh.run_id, "r0", "b", reviewed_at=t2),
                    Review(split.run_id, "r1", "tie", reviewed_at=t2),
                    Review(withdrawn.run_id, "r0", None, reviewed_at=t2),
                    Review(withdrawn.run_id, "r1", None, reviewed_at=t2),
                ],
            )
            assert supersede_imports(conn, "corrected.csv", [gone.idempotency_key], []) == 1
        result = run_dbt(["run", *select], env=env)
        assert result.success, result.exception
        written = {r.node.name: r.adapter_response.get("rows_affected") for r in result.result}

        pair = frame[["item_id", "contestant_a", "contestant_b"]].apply(tuple, axis=1)
        by_run = dict(zip((r.run_id for r in records), pair, strict=True))
        touched = set(pair[night == 2]) | {
            by_run[r.run_id] for r in (fresh, split, withdrawn, gone)
        }
        assert written["int_human_consensus"] == 2  # fresh and split; withdrawn has no verdict
        assert written["int_pairwise_judgments"] == int(pair.isin(touched).sum()) - 1  # gone
        assert int(pair.isin(touched).sum()) < len(frame)

        incremental = {model: _table(url, model) for model in LABELS}
        consensus = incremental["int_human_consensus"].set_index("run_id")
        assert withdrawn.run_id not in consensus.index
        assert consensus.loc[fresh.run_id, "consensus_verdict"] == "b"
        assert not consensus.loc[split.run_id, "has_consensus"]
        assert gone.run_id not in set(incremental["int_pairwise_judgments"]["run_id"])
        refresh = run_dbt(["run", "--quiet", "--full-refresh", "--select", *LABELS], env=env)
        assert refresh.success, refresh.exception
        for model in LABELS:
            assert len(incremental[model]) > 0, model
            pd.testing.assert_frame_equal(_table(url, model), incremental[model], obj=model)
    finally:
        drop_database(pg_server, name)
