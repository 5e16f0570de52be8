"""The statistics behind drift checks and the release gate, in one small, pure module.

Everything here is a function of counts or per-item outcomes: no warehouse, no config, no I/O,
so the drift detectors and the gate can be tested on hand-built tables and checked against
scipy / statsmodels. Array arguments broadcast (numpy), which lets the drift tests simulate
thousands of nights in one call through the very code the nightly checks run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as _sp

FloatArray = npt.NDArray[np.float64]


def _z(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (0.95 → 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return float(_sp.norm.isf((1 - confidence) / 2))


def _unwrap(value: FloatArray) -> FloatArray | float:
    """A 0-d result as a float, so scalar callers get scalars back."""
    return float(value) if np.ndim(value) == 0 else value


# --- proportions ---------------------------------------------------------------------------


def wilson_interval(
    successes: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray | float, FloatArray | float]:
    """Wilson score interval of a binomial proportion (no continuity correction).

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and keeps its coverage
    at pass rates near 0 or 1 and at small n — where band checks ("too easy", "stalling") live.
    Equals statsmodels `proportion_confint(method="wilson")`. n = 0 gives the vacuous (0, 1).
    """
    x = np.asarray(successes, dtype=float)
    total = np.asarray(n, dtype=float)
    if np.any(x < 0) or np.any(x > total):
        raise ValueError("successes must lie in [0, n]")
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / total
        denominator = 1 + z**2 / total
        centre = (p + z**2 / (2 * total)) / denominator
        half = z * np.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denominator
    low = np.where(total > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where(total > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return _unwrap(low), _unwrap(high)


@dataclass(frozen=True, slots=True)
class ZTest:
    """A z statistic and its p-value (arrays when the inputs were arrays)."""

    statistic: FloatArray | float
    p_value: FloatArray | float


def _p_from_z(z: FloatArray, alternative: str) -> FloatArray:
    if alternative == "two-sided":
        return 2 * _sp.norm.sf(np.abs(z))
    if alternative == "larger":
        return _sp.norm.sf(z)
    if alternative == "smaller":
        return _sp.norm.cdf(z)
    raise ValueError(f"alternative must be two-sided, larger or smaller, not {alternative!r}")


def one_proportion_score_p(
    successes: npt.ArrayLike, n: npt.ArrayLike, bound: float, alternative: str
) -> FloatArray | float:
    """Score-test p-value of a proportion against a fixed `bound` ("larger": above it).

    The test the Wilson interval inverts: p < α exactly when the bound lies outside the
    one-sided (1 − α) Wilson bound, so a detector can report the p-value of its interval check.
    A bound of 0 or 1 cannot be crossed on the side beyond it (p = 1) and always is on the other.
    """
    if bound <= 0 or bound >= 1:
        beyond = (alternative == "larger") == (bound >= 1)
        return _unwrap(np.full(np.shape(n), 1.0 if beyond else 0.0))
    x, total = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = (x / total - bound) / np.sqrt(bound * (1 - bound) / total)
    return _unwrap(_p_from_z(z, alternative))


def two_proportion_ztest(
    x1: npt.ArrayLike,
    n1: npt.ArrayLike,
    x2: npt.ArrayLike,
    n2: npt.ArrayLike,
    alternative: str = "two-sided",
) -> ZTest:
    """Pooled two-proportion z test (score test) of p1 = p2; "larger" means p1 > p2.

    Equals statsmodels `proportions_ztest([x1, x2], [n1, n2])`. Vectorised: the drift detector
    runs it over every stage (and, in its tests, every simulated night) at once. When both
    samples are all passes or all fails the difference is exactly 0 and the test says so
    (z = 0, p = 1) instead of dividing by zero.
    """
    x1a, n1a = np.asarray(x1, dtype=float), np.asarray(n1, dtype=float)
    x2a, n2a = np.asarray(x2, dtype=float), np.asarray(n2, dtype=float)
    pooled = (x1a + x2a) / (n1a + n2a)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1a + 1 / n2a))
    diff = x1a / n1a - x2a / n2a
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
    return ZTest(statistic=_unwrap(z), p_value=_unwrap(_p_from_z(z, alternative)))


def two_proportion_exact_p(
    x1: int, n1: int, x2: int, n2: int, alternative: str = "two-sided"
) -> float:
    """Fisher's exact test of p1 = p2 for small samples where the z test's normal tail lies.

    `alternative` as in `two_proportion_ztest` ("larger": p1 > p2).
    """
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    scipy_alternative = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}
    if alternative not in scipy_alternative:
        raise ValueError(f"alternative must be two-sided, larger or smaller, not {alternative!r}")
    return float(_sp.fisher_exact(table, alternative=scipy_alternative[alternative]).pvalue)


# --- paired outcomes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairedCounts:
    """The 2×2 table of two systems on the same items.

    `baseline_only` (b): baseline right, candidate wrong — the candidate's regressions.
    `candidate_only` (c): candidate right, baseline wrong — its improvements.
    """

    both: int
    baseline_only: int
    candidate_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.baseline_only + self.candidate_only + self.neither

    @property
    def discordant(self) -> int:
        return self.baseline_only + self.candidate_only

    @property
    def delta(self) -> float:
        """Candidate accuracy minus baseline accuracy, (c - b) / n."""
        return (self.candidate_only - self.baseline_only) / self.n if self.n else 0.0


def paired_counts(baseline: Sequence[bool], candidate: Sequence[bool]) -> PairedCounts:
    base = np.asarray(baseline, dtype=bool)
    cand = np.asarray(candidate, dtype=bool)
    if base.shape != cand.shape or base.ndim != 1:
        raise ValueError("baseline and candidate must be 1-d and paired item by item")
    return PairedCounts(
        both=int(np.sum(base & cand)),
        baseline_only=int(np.sum(base & ~cand)),
        candidate_only=int(np.sum(~base & cand)),
        neither=int(np.sum(~base & ~cand)),
    )


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test: under "no preference" each untied unit is a fair coin, so p is
    a binomial test of `wins` against `wins + losses` at 1/2 (scipy `binomtest(...).pvalue`).
    Ties carry no direction and are left out by the caller; no untied unit gives p = 1.
    """
    if wins < 0 or losses < 0:
        raise ValueError("counts must be non-negative")
    tail = _sp.binom.cdf(min(wins, losses), wins + losses, 0.5)
    return float(min(1.0, 2 * tail))


def mcnemar_exact_p(baseline_only: int, candidate_only: int) -> float:
    """Exact two-sided McNemar p-value: the sign test of b vs c on the discordant pairs.

    Concordant items carry no information about which system is better, so only the
    b + c discordant pairs enter, each equally likely to go either way under H0. Equals
    statsmodels `mcnemar(table, exact=True).pvalue`; no discordant pairs gives p = 1.
    """
    if baseline_only < 0 or candidate_only < 0:
        raise ValueError("discordant counts must be non-negative")
    return sign_test_p(candidate_only, baseline_only)


@dataclass(frozen=True, slots=True)
class BootstrapCI:
    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int


def bootstrap_mean_ci(
    values: Sequence[float] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 20,
) -> BootstrapCI:
    """Percentile CI of the mean of per-unit values, resampling units with replacement.

    Resampling n units and averaging them is the same as a multinomial draw of how often each
    distinct value appears; per-item outcomes take few distinct values (0/1 differences take
    three), so B resamples cost O(B·k) instead of O(B·n), with the distribution of the classic
    index bootstrap.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("need at least one unit")
    distinct, counts = np.unique(data, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(data.size, counts / data.size, size=n_resamples)
    means = draws @ distinct / data.size
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapCI(
        estimate=float(data.mean()),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_resamples=n_resamples,
    )


def paired_bootstrap_delta_ci(
    baseline: Sequence[float] | npt.ArrayLike,
    candidate: Sequence[float] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 20,
) -> BootstrapCI:
    """Percentile CI of mean(candidate - baseline), resampling items (pairs kept together)."""
    diffs = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    if diffs.ndim != 1 or diffs.size == 0:
        raise ValueError("need at least one paired item")
    return bootstrap_mean_ci(diffs, confidence=confidence, n_resamples=n_resamples, seed=seed)


def noninferiority_power(n: int, discordant_rate: float, margin: float, alpha: float) -> float:
    """Power of a paired non-inferiority test at `margin` when both systems are truly equal.

    Normal approximation of the paired difference: under equality its variance is
    discordant_rate / n, and H0 "candidate worse by at least margin" is rejected one-sided at
    `alpha`. This is the planning formula behind "too few items for the configured power".
    """
    if n <= 0 or margin <= 0:
        return 0.0
    if discordant_rate <= 0:
        return 1.0
    shift = margin * math.sqrt(n / discordant_rate)
    return float(_sp.norm.cdf(shift - _sp.norm.isf(alpha)))


def noninferiority_required_n(
    discordant_rate: float, margin: float, alpha: float, power: float
) -> int:
    """Items needed for `noninferiority_power` to reach `power` (the inverse of it)."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    z_sum = _sp.norm.isf(alpha) + _sp.norm.isf(1 - power)
    return max(1, math.ceil(discordant_rate * z_sum**2 / margin**2))


# --- agreement ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kappa:
    """Cohen's kappa with what is needed to read it honestly.

    `kappa` is None when it is undefined: no items, or both raters put every item in the same
    single category (expected agreement 1, so kappa is 0/0). `degenerate` names such a table —
    also the case where one rater used a single category, where kappa is defined (and ≤ 0)
    but its standard error is not meaningful, so no CI is given.
    """

    kappa: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    observed_agreement: float | None
    expected_agreement: float | None
    n: int
    degenerate: str | None = None


def confusion_table(
    labels_a: Sequence[str], labels_b: Sequence[str], categories: Sequence[str] | None = None
) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Square count table (rows: rater a, columns: rater b) over the union of categories."""
    if len(labels_a) != len(labels_b):
        raise ValueError("the two raters must label the same items")
    cats = list(categories) if categories is not None else sorted(set(labels_a) | set(labels_b))
    index = {cat: i for i, cat in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)), dtype=np.int64)
    for a, b in zip(labels_a, labels_b, strict=True):
        table[index[a], index[b]] += 1
    return table, cats


def cohens_kappa(table: npt.ArrayLike, confidence: float = 0.95) -> Kappa:
    """Cohen's kappa of a square agreement table (statsmodels' estimate and standard error)."""
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError("kappa needs a square table")
    n = int(counts.sum())
    if n == 0:
        return Kappa(None, None, None, None, None, None, 0, degenerate="no items")
    observed = float(np.trace(counts) / n)
    rows, cols = counts.sum(axis=1) / n, counts.sum(axis=0) / n
    expected = float(rows @ cols)
    if math.isclose(expected, 1.0):
        return Kappa(
            None,
            None,
            None,
            None,
            observed,
            expected,
            n,
            degenerate="both raters used one and the same category for every item",
        )
    if np.count_nonzero(rows) == 1 or np.count_nonzero(cols) == 1:
        kappa = (observed - expected) / (1 - expected)
        return Kappa(
            kappa,
            None,
            None,
            None,
            observed,
            expected,
            n,
            degenerate="one rater used a single category",
        )
    from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

    result = sm_cohens_kappa(counts)
    half = _z(confidence) * float(result.std_kappa)  # statsmodels fixes its own CI at 95 %
    return Kappa(
        kappa=float(result.kappa),
        std_error=float(result.std_kappa),
        ci_low=float(result.kappa) - half,
        ci_high=float(result.kappa) + half,
        observed_agreement=observed,
        expected_agreement=expected,
        n=n,
    )


# --- percentiles -------------------------------------------------------------------------------


def percentile(values: Sequence[float | None] | npt.ArrayLike, q: float) -> float | None:
    """The q-th percentile (0–100) of the non-missing values, None when there are none.

    Linear interpolation, the same as Postgres `percentile_cont(q / 100)`, so a p95 computed
    here matches the one in the marts.
    """
    array = np.asarray([np.nan if v is None else v for v in np.ravel(values)], dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return None
    return float(np.percentile(array, q))


def p95(values: Sequence[float | None] | npt.ArrayLike) -> float | None:
    return percentile(values, 95)


def median(values: Sequence[float | None] | npt.ArrayLike) -> float | None:
    return percentile(values, 50)
