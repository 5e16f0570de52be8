"""evals.stats against scipy / statsmodels on hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from evals import stats

PROPORTIONS = [(0, 10), (1, 10), (5, 10), (10, 10), (17, 40), (180, 200), (3, 1000), (999, 1000)]


@pytest.mark.parametrize(("successes", "n"), PROPORTIONS)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.999])
def test_wilson_interval_equals_statsmodels(successes: int, n: int, confidence: float) -> None:
    expected = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    assert stats.wilson_interval(successes, n, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_interval_is_vectorised_and_vacuous_without_data() -> None:
    low, high = stats.wilson_interval([0, 5, 9], [0, 10, 10])
    expected_low, expected_high = proportion_confint([5, 9], [10, 10], method="wilson")
    assert (low[0], high[0]) == (0.0, 1.0)
    assert low[1:] == pytest.approx(expected_low)
    assert high[1:] == pytest.approx(expected_high)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(45, 100, 60, 100), (150, 200, 1900, 2800), (3, 30, 9, 31)]
)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_two_proportion_ztest_equals_statsmodels(x1, n1, x2, n2, alternative) -> None:
    z, p = proportions_ztest([x1, x2], [n1, n2], alternative=alternative)
    result = stats.two_proportion_ztest(x1, n1, x2, n2, alternative=alternative)
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(p)


def test_two_proportion_ztest_of_identical_certain_samples_is_not_significant() -> None:
    result = stats.two_proportion_ztest([10, 0], [10, 5], [20, 0], [20, 7])
    assert list(result.statistic) == [0.0, 0.0]
    assert list(result.p_value) == [1.0, 1.0]


def test_two_proportion_exact_p_equals_fisher() -> None:
    expected = sp.fisher_exact([[2, 8], [9, 3]], alternative="less").pvalue
    assert stats.two_proportion_exact_p(2, 10, 9, 12, alternative="smaller") == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    ("b", "c"), [(0, 0), (0, 1), (1, 0), (3, 9), (9, 3), (12, 12), (25, 40), (0, 17), (60, 20)]
)
def test_mcnemar_exact_equals_statsmodels(b: int, c: int) -> None:
    table = [[50, b], [c, 30]]
    expected = mcnemar(table, exact=True).pvalue
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(expected, abs=1e-15)


def test_paired_counts_reads_regressions_and_improvements() -> None:
    baseline = [True, True, False, False, True]
    candidate = [True, False, True, True, True]
    counts = stats.paired_counts(baseline, candidate)
    assert (counts.both, counts.baseline_only, counts.candidate_only, counts.neither) == (
        2,
        1,
        2,
        0,
    )
    assert counts.discordant == 3
    assert counts.delta == pytest.approx(0.2)


def _paired_sample(n: int, b: int, c: int, both: int) -> tuple[np.ndarray, np.ndarray]:
    base = np.array([1] * both + [1] * b + [0] * c + [0] * (n - both - b - c), dtype=float)
    cand = np.array([1] * both + [0] * b + [1] * c + [0] * (n - both - b - c), dtype=float)
    return base, cand


@pytest.mark.parametrize(("n", "b", "c", "both"), [(200, 12, 25, 140), (60, 9, 3, 40)])
def test_paired_bootstrap_matches_scipy_percentile_bootstrap(n, b, c, both) -> None:
    base, cand = _paired_sample(n, b, c, both)
    ours = stats.paired_bootstrap_delta_ci(base, cand, n_resamples=20000, seed=1)
    theirs = sp.bootstrap(
        (base, cand),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        paired=True,
        n_resamples=20000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert ours.estimate == pytest.approx((c - b) / n)
    lattice = 1.01 / n  # resampled deltas are multiples of 1/n: allow one step
    assert ours.low == pytest.approx(theirs.low, abs=lattice)
    assert ours.high == pytest.approx(theirs.high, abs=lattice)
    # ... and the normal approximation of a paired difference agrees too.
    p_b, p_c = b / n, c / n
    se = math.sqrt((p_b + p_c - (p_c - p_b) ** 2) / n)
    assert ours.low == pytest.approx((c - b) / n - 1.96 * se, abs=0.01)


def test_paired_bootstrap_is_reproducible_with_a_fixed_seed() -> None:
    base, cand = _paired_sample(100, 7, 11, 70)
    first = stats.paired_bootstrap_delta_ci(base, cand, seed=5)
    assert first == stats.paired_bootstrap_delta_ci(base, cand, seed=5)
    assert first != stats.paired_bootstrap_delta_ci(base, cand, seed=6)


def test_paired_bootstrap_without_discordant_pairs_has_a_zero_width_interval() -> None:
    ci = stats.paired_bootstrap_delta_ci([1, 0, 1], [1, 0, 1])
    assert (ci.low, ci.estimate, ci.high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "table", [[[20, 5], [10, 15]], [[5, 3], [2, 7]], [[3, 0, 1], [0, 4, 0], [1, 0, 5]]]
)
def test_cohens_kappa_equals_statsmodels(table) -> None:
    expected = sm_cohens_kappa(np.array(table))
    ours = stats.cohens_kappa(table)
    assert ours.degenerate is None
    assert ours.kappa == pytest.approx(expected.kappa)
    assert ours.std_error == pytest.approx(expected.std_kappa)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((expected.kappa_low, expected.kappa_upp))


def test_cohens_kappa_is_undefined_when_both_raters_use_one_category() -> None:
    result = stats.cohens_kappa([[12, 0], [0, 0]])
    assert result.kappa is None
    assert result.observed_agreement == 1.0
    assert "same category" in (result.degenerate or "")


def test_cohens_kappa_of_a_single_category_rater_is_zero_without_an_interval() -> None:
    result = stats.cohens_kappa([[5, 3], [0, 0]])
    assert result.kappa == pytest.approx(0.0)
    assert result.ci_low is None
    assert result.degenerate == "one rater used a single category"


def test_cohens_kappa_of_no_items_is_undefined() -> None:
    assert stats.cohens_kappa([[0, 0], [0, 0]]).kappa is None


def test_confusion_table_feeds_kappa() -> None:
    table, categories = stats.confusion_table(["pass", "fail", "pass"], ["pass", "pass", "pass"])
    assert categories == ["fail", "pass"]
    assert table.tolist() == [[0, 1], [0, 2]]


def test_percentiles_ignore_missing_values_and_match_percentile_cont() -> None:
    values = [120.0, None, 80.0, 100.0, float("nan"), 400.0]
    assert stats.p95(values) == pytest.approx(np.percentile([80, 100, 120, 400], 95))
    assert stats.median(values) == pytest.approx(110.0)
    assert stats.p95([None]) is None


def test_noninferiority_power_and_required_n_are_inverse() -> None:
    required = stats.noninferiority_required_n(0.1, margin=0.05, alpha=0.025, power=0.8)
    assert required == 314
    assert stats.noninferiority_power(required, 0.1, 0.05, 0.025) >= 0.8
    assert stats.noninferiority_power(required - 5, 0.1, 0.05, 0.025) < 0.8
    assert stats.noninferiority_power(50, 0.0, 0.05, 0.025) == 1.0
