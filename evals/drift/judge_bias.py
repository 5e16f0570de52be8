"""A pairwise judge that follows the slot: position bias and inconsistency past their levels.

A judge shown the same pair in both orders should give the same verdict (in the item's own
labelling). `fct_pairwise_judge_bias` measures, per cohort (suite version × judge × judge prompt
version × source), the share of pairs whose two verdicts differ (1 − consistency) and, among
those, the share that favour the first slot (position bias, ½ for a judge that errs without
preference). Either past its configured level means the judge's preferences say more about the
order than the answers. The level must be passed by the interval's lower end, not the estimate,
so a cohort of a few dozen pairs does not alarm on noise; cohorts with fewer than
`pairwise_min_pairs` pairs judged in both orders are not assessed, nor position bias on fewer
than `pairwise_min_inconsistent_pairs` inconsistent pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from evals.config import DriftConfig
from evals.drift.findings import Finding

KINDS = ("judge_position_bias", "judge_inconsistency")
_COHORT = ("suite", "suite_version", "judge_model", "judge_prompt_version", "source")


def cohort_subject(row: Mapping[str, Any]) -> str:
    """`judge=<model> prompt=… suite=…@… source=…`: one judge within one cohort."""
    return (
        f"judge={row['judge_model']} prompt={row['judge_prompt_version'] or '-'} "
        f"suite={row['suite']}@{(row['suite_version'] or '-')[:12]} source={row['source']}"
    )


def _finding(
    row: Mapping[str, Any],
    kind: str,
    statistic: str,
    observed: float,
    interval: tuple[float, float],
    level: float,
    config_key: str,
    as_of: date,
) -> Finding:
    subject = cohort_subject(row)
    return Finding(
        kind=kind,
        subject=subject,
        severity="warning",
        message=(
            f"{subject}: {statistic.replace('_', ' ')} {observed:.1%} (95 % interval "
            f"{interval[0]:.1%} … {interval[1]:.1%}) is past {level:.1%} ({config_key}) over "
            f"{row['pairs_both_orders']} pairs judged in both orders"
        ),
        statistic=statistic,
        observed=observed,
        expected_low=None,
        expected_high=level,
        window_start=as_of,
        window_end=as_of,
        evidence={
            "cohort": {name: row[name] for name in _COHORT},
            "ci_low": interval[0],
            "ci_high": interval[1],
            "level": level,
            "items": row["items"],
            "pairs_both_orders": row["pairs_both_orders"],
            "inconsistent_pairs": row["inconsistent_pairs"],
            "a_rate_first_order": row["a_rate_first_order"],
            "a_rate_swapped_order": row["a_rate_swapped_order"],
        },
    )


def detect_judge_bias(
    rows: Iterable[Mapping[str, Any]], config: DriftConfig, *, as_of: date
) -> list[Finding]:
    """Findings for the cohorts of `fct_pairwise_judge_bias` rows whose position bias or
    inconsistency is confidently past its level, dated `as_of`."""
    findings = []
    for row in rows:
        if (row["pairs_both_orders"] or 0) < config.pairwise_min_pairs:
            continue
        if row["consistency_rate"] is not None:
            low = 1 - row["consistency_ci_high"]
            if low > config.pairwise_max_inconsistency:
                findings.append(
                    _finding(
                        row,
                        "judge_inconsistency",
                        "inconsistency_rate",
                        1 - row["consistency_rate"],
                        (low, 1 - row["consistency_ci_low"]),
                        config.pairwise_max_inconsistency,
                        "drift.pairwise_max_inconsistency",
                        as_of,
                    )
                )
        enough = (row["inconsistent_pairs"] or 0) >= config.pairwise_min_inconsistent_pairs
        if enough and row["position_bias"] is not None:
            low = row["position_bias_ci_low"]
            if low > config.pairwise_max_position_bias:
                findings.append(
                    _finding(
                        row,
                        "judge_position_bias",
                        "position_bias",
                        row["position_bias"],
                        (low, row["position_bias_ci_high"]),
                        config.pairwise_max_position_bias,
                        "drift.pairwise_max_position_bias",
                        as_of,
                    )
                )
    return findings
