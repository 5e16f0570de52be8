"""Agreement by presentation order: per order, in every order, position bias, clustered intervals.

A generated pairwise data set with a known position bias (a judge that, some of the time, picks
whatever answer is shown first) goes through real `dbt build`, and fct_agreement_by_order_weekly
must equal a pandas recomputation. Then 1,000 simulated data sets go through the mart's compiled
SQL (its input int_order_judgments replaced by the simulated judgments): the item-clustered 95 %
interval must cover the true agreement in 93–97 % of them, where the naive Wilson interval
over judgments (repeated judgments of an item taken as independent) covers less.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from reference_stats import design_wilson, t975, wilson
from statsmodels.stats.inter_rater import cohens_kappa

from evals.config import Config
from evals.dbt import dbt_env, run_dbt
from evals.runlog import RunRecord, idempotency_key, write_runs

WEEK = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
ORDERS = {"first": "1", "swapped": "2"}  # the content label shown in the first slot
TOL = 1e-9
SCOPES = {
    "first_order": ["first"],
    "swapped_order": ["swapped"],
    "all_orders": ["first", "swapped"],
}


def pairwise_judgments(
    rng: np.random.Generator, n_items: int, trials: int, bias: float
) -> pd.DataFrame:
    """Each item (truth "1" or "2") judged `trials` times in each order. With probability
    `bias` a judgment picks the first slot whatever it shows (content "1" in the first order,
    "2" in the swapped one); otherwise it is right with the item's own accuracy (Beta(1.2,
    0.5): items differ a lot, so an item's judgments are correlated), else a tie or the wrong
    answer. Expected agreement in either order: bias/2 + (1 − bias) · 1.2/1.7."""
    rows = []
    for item in range(n_items):
        truth = rng.choice(["1", "2"])
        accuracy = rng.beta(1.2, 0.5)
        for order, first_slot in ORDERS.items():
            for trial in range(trials):
                if rng.random() < bias:
                    label = first_slot
                elif rng.random() < accuracy:
                    label = truth
                else:
                    label = rng.choice(["tie", "2" if truth == "1" else "1"])
                rows.append(
                    {"item": item, "truth": truth, "order": order, "trial": trial, "label": label}
                )
    return pd.DataFrame(rows)


def true_agreement(bias: float) -> float:
    return bias / 2 + (1 - bias) * 1.2 / 1.7


def true_kappa(bias: float) -> float:
    """Population kappa in either order: the reference is "1" or "2" half the time each, so
    chance agreement is half of the judge's non-tie share."""
    chance = (1 - (1 - bias) * (1 - 1.2 / 1.7) / 2) / 2
    return (true_agreement(bias) - chance) / (1 - chance)


# -- the reference computation ----------------------------------------------------------------


def _clustered(frame: pd.DataFrame) -> dict:
    """Agreement and kappa of judgments (columns item, label, reference) with SEs clustered by
    item, computed from their definitions."""
    agrees = (frame["label"] == frame["reference"]).astype(float)
    per_item = pd.DataFrame({"a": agrees, "m": 1.0, "item": frame["item"]}).groupby("item").sum()
    items, judgments = len(per_item), len(frame)
    p = agrees.sum() / judgments
    factor = items / (items - 1) if items > 1 else np.nan
    se = math.sqrt(((per_item["a"] - p * per_item["m"]) ** 2).sum() * factor) / judgments
    labels = sorted(set(frame["label"]) | set(frame["reference"]))
    table = pd.crosstab(frame["label"], frame["reference"]).reindex(
        index=labels, columns=labels, fill_value=0
    )
    judge_share = table.sum(axis=1) / judgments
    reference_share = table.sum(axis=0) / judgments
    chance = float((judge_share * reference_share).sum())
    kappa = kappa_se = np.nan
    if chance < 1:
        kappa = cohens_kappa(table.to_numpy()).kappa
        influence = (
            (agrees - p)
            - (
                frame["label"].map(reference_share).fillna(0)
                + frame["reference"].map(judge_share).fillna(0)
                - 2 * chance
            )
            * (1 - kappa)
        ) / (1 - chance)
        kappa_se = (
            math.sqrt((influence.groupby(frame["item"]).sum() ** 2).sum() * factor) / judgments
        )
    low, high = design_wilson(p, se, items - 1, items)
    t = t975(items - 1)
    return {
        "n_items": items,
        "n_judgments": judgments,
        "n_agree": int(agrees.sum()),
        "agreement": p,
        "agreement_se_clustered": se,
        "agreement_ci_low": low,
        "agreement_ci_high": high,
        "kappa": kappa,
        "kappa_se_clustered": kappa_se,
        "kappa_ci_low": max(-1.0, kappa - t * kappa_se),
        "kappa_ci_high": min(1.0, kappa + t * kappa_se),
    }


def _item_figures(frame: pd.DataFrame) -> dict:
    """Both-orders figures: items judged in each order; each order's verdict is its first trial."""
    rows = []
    for _, judged in frame.groupby("item"):
        if set(judged["order"]) != {"first", "swapped"}:
            continue
        first, swapped = (
            judged[judged["order"] == o].sort_values(["trial", "started_at"])["label"].iloc[0]
            for o in ORDERS
        )
        decisive = [label not in ("tie", "<parse_error>") for label in (first, swapped)]
        rows.append(
            {
                "right": bool((judged["label"] == judged["reference"]).all()),
                "flip": first != swapped and all(decisive),
                "tie_flip": first != swapped
                and decisive[0] != decisive[1]
                and "tie" in (first, swapped)
                and "<parse_error>" not in (first, swapped),
                "changed": first != swapped,
            }
        )
    items = pd.DataFrame(rows, columns=["right", "flip", "tie_flip", "changed"])
    n = len(items)
    right, flips = int(items["right"].sum()), int(items["flip"].sum())
    return {
        "n_items_both_orders": n,
        "n_items_right_in_every_order": right,
        "both_orders_agreement": right / n if n else np.nan,
        **dict(
            zip(
                ["both_orders_agreement_ci_low", "both_orders_agreement_ci_high"],
                wilson(right, n),
                strict=True,
            )
        ),
        "n_items_decisive_verdict_flipped": flips,
        "n_items_flipped_to_or_from_tie": int(items["tie_flip"].sum()),
        "n_items_verdict_changed": int(items["changed"].sum()),
        "position_bias_rate_decisive_flips": flips / n if n else np.nan,
        "order_changed_verdict_rate_incl_ties": items["changed"].sum() / n if n else np.nan,
    }


# -- a generated warehouse through dbt --------------------------------------------------------


def _warehouse_rows(seed: int) -> tuple[list[RunRecord], list[tuple]]:
    """Two judges' pairwise judgments (positions AB/BA and original/swapped), golden expected
    verdicts on half the items, human reviews (some split) on the other half, parse errors,
    items judged in one order only."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    runs, reviews = [], []
    for model, names, bias in (
        ("judge-a", ("AB", "BA"), 0.25),
        ("judge-b", ("original", "swapped"), 0.05),
    ):
        judged = pairwise_judgments(rng, n_items=40, trials=2, bias=bias)
        for (item, truth), rows in judged.groupby(["item", "truth"]):
            golden = item % 2 == 0
            if item % 7 == 3:
                rows = rows[rows["order"] == "first"]  # never judged swapped
            for row in rows.itertuples():
                status = "parse_error" if pick.random() < 0.04 else "ok"
                run = RunRecord(
                    idempotency_key=idempotency_key(model, item, row.order, row.trial),
                    source="golden",
                    role="judge",
                    model=model,
                    suite="pairwise-qa",
                    suite_version="v1",
                    item_id=f"i{item}",
                    batch_id="b1",
                    prompt_name="judge",
                    prompt_version="jp1",
                    trial=int(row.trial),
                    started_at=WEEK
                    + timedelta(hours=item, minutes=int(row.trial), seconds=pick.randrange(60)),
                    status=status,
                    verdict=row.label if status == "ok" else None,
                    passed=row.label == "1" if status == "ok" else None,
                    expected_verdict=truth if golden else None,
                    attributes={"position": names[0] if row.order == "first" else names[1]},
                )
                runs.append(run)
                if not golden and row.order == "first" and row.trial == 0:
                    labels = [truth, truth, "tie"] if item % 5 else [truth, "tie"]  # a split panel
                    reviews += [
                        (uuid.uuid4(), run.run_id, f"r{k}", label) for k, label in enumerate(labels)
                    ]
    return runs, reviews


def _expected(url: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        runs = pd.DataFrame(
            conn.execute(
                "select run_id, model, item_id, trial, started_at, status, verdict, expected_verdict,"
                " attributes ->> 'position' as position from raw.eval_runs"
            ).fetchall(),
            columns=[
                "run_id",
                "model",
                "item",
                "trial",
                "started_at",
                "status",
                "verdict",
                "expected",
                "position",
            ],
        )
        reviews = pd.DataFrame(
            conn.execute("select run_id, verdict from raw.human_reviews").fetchall(),
            columns=["run_id", "verdict"],
        )
    runs["order"] = np.where(
        runs["position"].str.lower().isin(["swapped", "ba"]), "swapped", "first"
    )
    runs["label"] = np.where(runs["status"] == "parse_error", "<parse_error>", runs["verdict"])
    majority = {}
    for run_id, group in reviews.groupby("run_id"):
        label, count = Counter(group["verdict"]).most_common(1)[0]
        majority[run_id] = label if count * 2 > len(group) else None
    rows = []
    for model, judged in runs.groupby("model"):
        human = {}
        for item, group in judged.groupby("item"):
            reviewed = [majority[r] for r in group["run_id"] if r in majority]
            if reviewed:
                human[item] = (
                    reviewed[0] if None not in reviewed and len(set(reviewed)) == 1 else None
                )
        golden = judged.groupby("item")["expected"].max().dropna().to_dict()
        for reference, labels in (("golden_expected", golden), ("human_majority", human)):
            frame = judged[judged["item"].isin(labels)]
            frame = frame.assign(reference=frame["item"].map(labels))
            compared = frame[frame["reference"].notna()]
            row = {
                "model": model,
                "reference": reference,
                "n_items_without_human_majority": frame.loc[
                    frame["reference"].isna(), "item"
                ].nunique(),
            }
            for scope, orders in SCOPES.items():
                row |= {
                    f"{scope}_{k}": v
                    for k, v in _clustered(compared[compared["order"].isin(orders)]).items()
                }
            rows.append(row | _item_figures(compared))
    return pd.DataFrame(rows)


def test_the_order_mart_equals_an_independent_computation(warehouse_url, tmp_path):
    env = dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "target")
    runs, reviews = _warehouse_rows(seed=3)
    with psycopg.connect(warehouse_url) as conn:
        write_runs(conn, runs)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.human_reviews (review_id, run_id, reviewer, verdict, reviewed_at) values (%s, %s, %s, %s, now())",
                reviews,
            )
    result = run_dbt(
        ["build", "--select", "+fct_agreement_by_order_weekly", "--indirect-selection", "cautious"],
        env=env,
    )
    assert result.success, [
        f"{r.node.name}: {r.message}"
        for r in result.result
        if str(r.status) not in ("success", "pass")
    ]

    with psycopg.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("select * from marts.fct_agreement_by_order_weekly")
        mart = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description], dtype=object)
    expected = _expected(warehouse_url)
    got = mart.set_index(["model", "reference"]).sort_index()
    want = expected.set_index(["model", "reference"]).sort_index()
    assert got.index.equals(want.index)
    for column in want.columns:
        a, b = got[column].astype(float).to_numpy(), want[column].astype(float).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        tolerance = 1e-6 if "_ci_" in column else TOL  # the SQL's t quantile past df 30 is a series
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=tolerance, rtol=0), column
    golden = got.xs("golden_expected", level="reference")
    assert (
        golden.loc["judge-a", "position_bias_rate_decisive_flips"]
        > golden.loc["judge-b", "position_bias_rate_decisive_flips"]
    )
    assert (got.xs("human_majority", level="reference")["n_items_without_human_majority"] > 0).all()


# -- coverage over repeated simulations, through the mart's SQL --------------------------------


def test_the_clustered_interval_covers_where_the_naive_one_does_not(warehouse_url, tmp_path):
    env = dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "target")
    assert run_dbt(
        ["--quiet", "compile", "--select", "fct_agreement_by_order_weekly"], env=env
    ).success
    compiled = next(
        Path(tmp_path / "target" / "compiled").rglob("fct_agreement_by_order_weekly.sql")
    ).read_text()
    rng = np.random.default_rng(2026)
    bias, replicates = 0.2, 1000
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("create schema if not exists staging")
        conn.execute("create schema if not exists intermediate")
        conn.execute("create table staging.stg_raw__human_reviews (ingested_at timestamptz)")
        conn.execute(
            "create table intermediate.int_order_judgments (item_key text, run_id uuid, week_start date,"
            " stage text, source text, role text, model text, prompt_version text, suite text,"
            " suite_version text, presentation_order text, trial int, started_at timestamptz,"
            " judge_label text, reference text, reference_label text, loaded_at timestamptz)"
        )
        with conn.cursor().copy(
            "copy intermediate.int_order_judgments (item_key, run_id, week_start, model, presentation_order,"
            " trial, started_at, judge_label, reference, reference_label) from stdin"
        ) as copy:
            for replicate in range(replicates):
                judged = pairwise_judgments(rng, n_items=80, trials=3, bias=bias)
                for row in judged.itertuples():
                    copy.write_row(
                        (
                            f"{replicate}-{row.item}",
                            uuid.uuid4(),
                            WEEK.date(),
                            f"sim-{replicate}",
                            row.order,
                            row.trial,
                            WEEK,
                            row.label,
                            "golden_expected",
                            row.truth,
                        )
                    )
        conn.commit()
    with psycopg.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from ({compiled}) as mart")
        mart = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description], dtype=object)
    assert len(mart) == replicates
    truth = true_agreement(bias)
    for scope in ("first_order", "all_orders"):
        low, high = (
            mart[f"{scope}_agreement_ci_low"].astype(float),
            mart[f"{scope}_agreement_ci_high"].astype(float),
        )
        clustered = ((low <= truth) & (truth <= high)).mean()
        naive_bounds = [
            wilson(int(a), int(n))
            for a, n in zip(mart[f"{scope}_n_agree"], mart[f"{scope}_n_judgments"], strict=True)
        ]
        naive = np.mean([lo <= truth <= hi for lo, hi in naive_bounds])
        kappa_low, kappa_high = (
            mart[f"{scope}_kappa_ci_low"].astype(float),
            mart[f"{scope}_kappa_ci_high"].astype(float),
        )
        kappa = ((kappa_low <= true_kappa(bias)) & (true_kappa(bias) <= kappa_high)).mean()
        print(
            f"{scope}: clustered coverage {clustered:.3f}, naive Wilson {naive:.3f}, kappa {kappa:.3f}"
        )
        assert 0.93 <= clustered <= 0.97
        assert naive < clustered - 0.02
        assert 0.93 <= kappa <= 0.97
