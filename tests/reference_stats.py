"""Reference implementations of the marts' interval maths (scipy / statsmodels), for the tests.

Independent of the SQL under test: exact t quantiles from scipy, Wilson bounds from statsmodels.
"""

from __future__ import annotations

import math

from scipy.stats import t as student_t
from statsmodels.stats.proportion import proportion_confint

Z95 = 1.959963984540054


def t975(df: float) -> float:
    """Student's t 0.975 quantile at df rounded down (at least 1), as the marts use it."""
    return float(student_t.ppf(0.975, max(1, math.floor(df))))


def design_wilson(
    estimate: float, se: float, df: float, n: float, exact: bool = False
) -> tuple[float, float]:
    """Wilson's 95 % interval at the effective sample size p(1 − p)/SE² × (z/t_df)² (n when
    that is undefined; the estimate itself when the sample was the whole population)."""
    if estimate is None or math.isnan(estimate):
        return math.nan, math.nan
    if exact:
        return estimate, estimate
    usable = se is not None and not math.isnan(se) and se > 0 and 0 < estimate < 1
    n_eff = estimate * (1 - estimate) / se**2 * (Z95 / t975(df)) ** 2 if usable else n
    low, high = proportion_confint(estimate * n_eff, n_eff, alpha=0.05, method="wilson")
    return max(0.0, min(low, estimate)), min(1.0, max(high, estimate))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Plain Wilson 95 % interval (independent observations), clamped to contain p."""
    if n == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    p = successes / n
    return max(0.0, min(low, p)), min(1.0, max(high, p))
