"""Simulated pairwise judgments with known truth, as run-log rows per the pairwise contract, and
the independent recomputations the pairwise marts are tested against (numpy / scipy).

The judge: on item i it picks whatever is in the first slot with probability β_i (its position
bias on that item); otherwise it says tie with probability τ, else prefers A with the
Bradley–Terry probability σ(s_A − s_B) of the true strengths. Verdicts are stored in the
item's labelling (a / b / tie), whichever order the pair was shown in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from evals.runlog import RunRecord, idempotency_key

ELO_PER_LN = 400 / math.log(10)
STARTED = datetime(2026, 11, 2, tzinfo=UTC)
ORDERS = ("ab", "ba")


@dataclass(frozen=True)
class Design:
    """Who competes, how each item is judged, and how the judge errs."""

    ratings: dict[str, float]  # true Bradley–Terry ratings, Elo scale
    items: int
    pairs_per_item: int
    trials: int
    biases: tuple[float, ...]  # β_i is one of these, equally likely
    tie: float

    def strengths(self) -> dict[str, float]:
        return {name: rating / ELO_PER_LN for name, rating in self.ratings.items()}


def simulate(rng: np.random.Generator, design: Design) -> pd.DataFrame:
    """One row per judgment: item, contestant_a, contestant_b, position, trial, verdict."""
    names = sorted(design.ratings)
    strength = design.strengths()
    pairs = list(combinations(names, 2))
    rows = []
    for item in range(design.items):
        bias = design.biases[rng.integers(len(design.biases))]
        for index in rng.choice(len(pairs), size=design.pairs_per_item, replace=False):
            a, b = pairs[index]
            if rng.random() < 0.5:
                a, b = b, a
            p_a = expit(strength[a] - strength[b])
            for trial in range(design.trials):
                for position in ORDERS:
                    if rng.random() < bias:
                        verdict = "a" if position == "ab" else "b"
                    elif rng.random() < design.tie:
                        verdict = "tie"
                    else:
                        verdict = "a" if rng.random() < p_a else "b"
                    rows.append((f"i{item:04d}", a, b, position, trial, verdict))
    return pd.DataFrame(
        rows, columns=["item_id", "contestant_a", "contestant_b", "position", "trial", "verdict"]
    )


def run_records(
    frame: pd.DataFrame,
    *,
    suite: str,
    judge: str = "judge-x",
    suite_version: str | None = "v1",
    prompt_version: str | None = "jp1",
    source: str = "golden",
    batch_id: str = "golden:2026-11-02",
) -> list[RunRecord]:
    """The judgments as the runner writes them (contract: role judge, verdict in the item's
    labelling, attributes position / contestants / slot_verdict). A missing verdict is a
    parse error."""
    records = []
    for number, row in enumerate(frame.itertuples(index=False)):
        verdict = row.verdict if isinstance(row.verdict, str) else None
        slot = None
        if verdict is not None:
            slot = (
                "tie"
                if verdict == "tie"
                else ("first" if (verdict == "a") == (row.position == "ab") else "second")
            )
        records.append(
            RunRecord(
                idempotency_key=idempotency_key(
                    batch_id,
                    suite,
                    row.item_id,
                    judge,
                    row.contestant_a,
                    row.contestant_b,
                    row.position,
                    row.trial,
                ),
                source=source,
                role="judge",
                model=judge,
                started_at=STARTED + timedelta(seconds=number),
                status="ok" if verdict else "parse_error",
                batch_id=batch_id,
                trial=int(row.trial),
                suite=suite,
                suite_version=suite_version,
                item_id=row.item_id,
                prompt_name="pairwise-judge",
                prompt_version=prompt_version,
                output_text=verdict or "no idea",
                verdict=verdict,
                attributes={
                    "position": row.position,
                    "contestant_a": row.contestant_a,
                    "contestant_b": row.contestant_b,
                    "response_a_run_id": None,
                    "response_b_run_id": None,
                    "slot_verdict": slot,
                },
            )
        )
    return records


# -- independent recomputations ---------------------------------------------------------------


def bt_fit(wins: pd.DataFrame) -> dict[str, float]:
    """Bradley–Terry by maximum likelihood (scipy, BFGS on the log-likelihood with its
    gradient): columns winner, loser, weight (a tie is half a win each way). Elo scale, mean 0."""
    names = sorted(set(wins["winner"]) | set(wins["loser"]))
    index = {name: k for k, name in enumerate(names)}
    i = wins["winner"].map(index).to_numpy()
    j = wins["loser"].map(index).to_numpy()
    w = wins["weight"].to_numpy(dtype=float)

    def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[i] - theta[j]
        value = np.sum(w * np.logaddexp(0.0, -d))
        grad_d = -w * expit(-d)
        grad = np.zeros_like(theta)
        np.add.at(grad, i, grad_d)
        np.add.at(grad, j, -grad_d)
        return value, grad

    result = minimize(
        negative_log_likelihood,
        np.zeros(len(names)),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-12, "maxiter": 10_000},
    )
    theta = result.x - result.x.mean()
    return {name: theta[index[name]] * ELO_PER_LN for name in names}


def win_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """Parsed judgments as winner / loser / weight rows (a tie: half a win each way)."""
    parsed = frame[frame["verdict"].notna()]
    a, b, verdict = parsed["contestant_a"], parsed["contestant_b"], parsed["verdict"]
    rows = pd.concat(
        [
            pd.DataFrame(
                {"winner": a, "loser": b, "weight": (verdict == "a") + 0.5 * (verdict == "tie")}
            ),
            pd.DataFrame(
                {"winner": b, "loser": a, "weight": (verdict == "b") + 0.5 * (verdict == "tie")}
            ),
        ]
    )
    return rows[rows["weight"] > 0]


def true_ratings(design: Design) -> dict[str, float]:
    """What the rating estimator converges to with infinitely many items: the Bradley–Terry fit
    to the expected outcome of every pair (position bias, averaged over both orders, and ties
    pull every win share towards ½, so this is not the strengths themselves; same order)."""
    strength = design.strengths()
    bias = float(np.mean(design.biases))
    rows = []
    for a, b in combinations(sorted(strength), 2):
        share = bias / 2 + (1 - bias) * (
            (1 - design.tie) * expit(strength[a] - strength[b]) + design.tie / 2
        )
        rows += [(a, b, share), (b, a, 1 - share)]
    return bt_fit(pd.DataFrame(rows, columns=["winner", "loser", "weight"]))


def true_position_bias(design: Design) -> float:
    """The position-bias estimand: expected first-slot-favouring inconsistent pair trials over
    expected inconsistent pair trials (every pair equally likely, β_i from design.biases)."""
    strength = design.strengths()
    favour = inconsistent = 0.0
    score_ab = {"a": 1, "b": -1, "tie": 0}
    score_ba = {"a": -1, "b": 1, "tie": 0}
    for bias in design.biases:
        for a, b in combinations(sorted(strength), 2):
            p = expit(strength[a] - strength[b])
            content = {
                "a": (1 - bias) * (1 - design.tie) * p,
                "b": (1 - bias) * (1 - design.tie) * (1 - p),
                "tie": (1 - bias) * design.tie,
            }
            ab = {**content, "a": content["a"] + bias}
            ba = {**content, "b": content["b"] + bias}
            for first, p_first in ab.items():
                for swapped, p_swapped in ba.items():
                    if first != swapped:
                        inconsistent += p_first * p_swapped
                        if score_ab[first] + score_ba[swapped] > 0:
                            favour += p_first * p_swapped
    return favour / inconsistent
