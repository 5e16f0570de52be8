"""The decision: a pure function of both sides' per-item outcomes (no I/O, no LLM).

Each criterion ends pass, warn (reported, not blocking), fail, insufficient or skipped; any
fail → no-deploy, else any insufficient → insufficient-data, else deploy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from evals import stats
from evals.config import GateConfig
from evals.gate.outcomes import (
    AffectedItem,
    Criterion,
    GateDecision,
    ItemOutcome,
    SideResults,
)


@dataclass(frozen=True, slots=True)
class _Pairs:
    """The items both sides settled, in a stable order, as aligned boolean lists."""

    items: list[tuple[ItemOutcome, ItemOutcome]]

    @property
    def baseline(self) -> list[bool]:
        return [bool(b.correct) for b, _ in self.items]

    @property
    def candidate(self) -> list[bool]:
        return [bool(c.correct) for _, c in self.items]

    def subset(self, keep: Callable[[ItemOutcome], bool]) -> _Pairs:
        return _Pairs([(b, c) for b, c in self.items if keep(b)])

    def counts(self) -> stats.PairedCounts:
        return stats.paired_counts(self.baseline, self.candidate)


def _pair(baseline: SideResults, candidate: SideResults) -> _Pairs:
    common = sorted(
        item_id
        for item_id, outcome in candidate.outcomes.items()
        if outcome.correct is not None
        and item_id in baseline.outcomes
        and baseline.outcomes[item_id].correct is not None
    )
    return _Pairs([(baseline.outcomes[i], candidate.outcomes[i]) for i in common])


def _pct(value: float) -> str:
    return f"{value:+.1%}"


def _accuracy_criteria(pairs: _Pairs, gate: GateConfig) -> list[Criterion]:
    """Sample size, the non-inferiority test itself, discordant pairs and power."""
    counts = pairs.counts()
    n, margin = counts.n, gate.non_inferiority_margin
    criteria = [
        Criterion(
            name="paired_items",
            status="pass" if n >= gate.min_items else "insufficient",
            summary=f"{n} items graded by both sides.",
            threshold=f"at least {gate.min_items} paired items (min_items)",
            observed=float(n),
            evidence={"paired_items": n},
        )
    ]
    if n == 0:
        criteria.append(
            Criterion(
                name="accuracy_non_inferiority",
                status="insufficient",
                summary="No item was graded by both sides.",
                threshold=f"candidate accuracy ≥ baseline − {margin:.1%}",
            )
        )
        return criteria
    confidence = 1 - gate.alpha
    accuracy = _non_inferiority_criterion(pairs, counts, gate, confidence)
    conclusive = accuracy.status in ("pass", "fail")
    return [
        *criteria,
        accuracy,
        _discordant_criterion(counts, gate, conclusive),
        _power_criterion(counts, gate, confidence, conclusive),
    ]


def _non_inferiority_criterion(
    pairs: _Pairs, counts: stats.PairedCounts, gate: GateConfig, confidence: float
) -> Criterion:
    n, margin = counts.n, gate.non_inferiority_margin
    ci = stats.paired_bootstrap_delta_ci(
        pairs.baseline,
        pairs.candidate,
        confidence=confidence,
        n_resamples=gate.bootstrap_samples,
        seed=gate.seed,
    )
    p_value = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
    conservative_low = _conservative_low(counts, gate, confidence)
    low = ci.low if conservative_low is None else min(ci.low, conservative_low)
    delta = counts.delta
    status, verdict = _non_inferiority_verdict(delta, low, ci.high, p_value, gate)
    base_acc = (counts.both + counts.baseline_only) / n
    cand_acc = (counts.both + counts.candidate_only) / n
    return Criterion(
        name="accuracy_non_inferiority",
        status=status,
        summary=(
            f"Accuracy {base_acc:.1%} → {cand_acc:.1%} (Δ {delta:+.1%}, "
            f"{confidence:.0%} CI {ci.low:+.1%} … {ci.high:+.1%}, McNemar p = {p_value:.3g}); "
            f"{verdict}."
        ),
        threshold=(
            f"the {confidence:.0%} paired-bootstrap CI of Δ must lie above "
            f"−{margin:.1%} (non_inferiority_margin); fails when Δ < −{margin:.1%} with "
            f"McNemar p < {gate.alpha} or the whole CI is below it"
        ),
        observed=delta,
        evidence={
            "baseline_accuracy": base_acc,
            "candidate_accuracy": cand_acc,
            "delta": delta,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "confidence": confidence,
            "conservative_low": conservative_low,
            "mcnemar_p": p_value,
            "baseline_only": counts.baseline_only,
            "candidate_only": counts.candidate_only,
            "both": counts.both,
            "neither": counts.neither,
            "bootstrap_samples": gate.bootstrap_samples,
            "seed": gate.seed,
        },
    )


def _conservative_low(
    counts: stats.PairedCounts, gate: GateConfig, confidence: float
) -> float | None:
    """Δ's lower end when too few pairs are discordant for resampling to see the spread, else None.

    It bounds the regression rate from above as if every unseen regression were possible
    (Wilson upper bound of b/n).
    """
    if counts.discordant >= gate.min_discordant:
        return None
    _, regress_high = stats.wilson_interval(counts.baseline_only, counts.n, confidence)
    return counts.candidate_only / counts.n - float(regress_high)


def _non_inferiority_verdict(
    delta: float, low: float, high: float, p_value: float, gate: GateConfig
) -> tuple[str, str]:
    """(status, verdict): pass above the margin, fail when clearly worse, else inconclusive."""
    margin = gate.non_inferiority_margin
    significant_regression = delta < -margin and p_value < gate.alpha
    if low > -margin:
        return "pass", f"non-inferior: the CI's lower end {_pct(low)} is above −{margin:.1%}"
    if significant_regression or high < -margin:
        return "fail", (
            f"worse by more than the margin: {_pct(delta)} "
            f"(McNemar p = {p_value:.2g}, CI up to {_pct(high)})"
        )
    return "insufficient", f"inconclusive: the CI reaches {_pct(low)}, beyond −{margin:.1%}"


def _discordant_criterion(
    counts: stats.PairedCounts, gate: GateConfig, conclusive: bool
) -> Criterion:
    return Criterion(
        name="discordant_pairs",
        status="pass" if counts.discordant >= gate.min_discordant or conclusive else "insufficient",
        summary=(
            f"{counts.discordant} items changed outcome ({counts.baseline_only} regressed, "
            f"{counts.candidate_only} improved)."
        ),
        threshold=(
            f"at least {gate.min_discordant} discordant pairs (min_discordant), unless "
            "the accuracy criterion is already conclusive"
        ),
        observed=float(counts.discordant),
        evidence={"discordant": counts.discordant},
    )


def _power_criterion(
    counts: stats.PairedCounts, gate: GateConfig, confidence: float, conclusive: bool
) -> Criterion:
    n, margin = counts.n, gate.non_inferiority_margin
    _, discordance_high = stats.wilson_interval(counts.discordant, n, confidence)
    one_sided = gate.alpha / 2
    power = stats.noninferiority_power(n, float(discordance_high), margin, one_sided)
    required = stats.noninferiority_required_n(
        float(discordance_high), margin, one_sided, gate.power
    )
    planning = (
        f"with {n} items the non-inferiority test has {power:.0%} power at a "
        f"{margin:.1%} margin; about {required} items would give {gate.power:.0%}"
    )
    return Criterion(
        name="power",
        status="pass" if power >= gate.power or conclusive else "insufficient",
        summary=(
            f"Moot, the accuracy result is conclusive ({planning})."
            if conclusive
            else f"{planning[0].upper()}{planning[1:]}."
        ),
        threshold=(
            f"power ≥ {gate.power:.0%} (power) at the discordance rate's upper bound "
            f"{float(discordance_high):.1%}, unless the accuracy criterion is conclusive"
        ),
        observed=power,
        evidence={
            "power": power,
            "required_items": required,
            "discordance_rate_upper": float(discordance_high),
        },
    )


def verdict_of(
    *, beyond: bool, significant: bool, too_few: bool, n: int, p_value: float
) -> tuple[str, str]:
    """(status, note) of a stage guardrail: skipped when too small, fail when beyond its margin
    and significant, warn when only beyond it, else pass."""
    if too_few:
        return "skipped", f"only {n} paired items: not assessed"
    if beyond and significant:
        return "fail", f"regressed beyond its margin (p = {p_value:.2g})"
    if beyond:
        return "warn", f"beyond its margin but not significant (p = {p_value:.2g})"
    return "pass", "within its margin"


def overall(criteria: list[Criterion]) -> str:
    """Any fail → no-deploy, else any insufficient → insufficient-data, else deploy."""
    if any(c.status == "fail" for c in criteria):
        return "no-deploy"
    if any(c.status == "insufficient" for c in criteria):
        return "insufficient-data"
    return "deploy"


def _stage_criteria(pairs: _Pairs, gate: GateConfig) -> list[Criterion]:
    stages = sorted({b.stage or "-" for b, _ in pairs.items})
    criteria = []
    for stage in stages:
        subset = pairs.subset(lambda o, s=stage: (o.stage or "-") == s)
        counts = subset.counts()
        margin = gate.stage_margins.get(stage, gate.stage_margin)
        p_value = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
        status, note = verdict_of(
            beyond=counts.delta < -margin,
            significant=p_value < gate.alpha,
            too_few=counts.n < gate.min_stage_items,
            n=counts.n,
            p_value=p_value,
        )
        criteria.append(
            Criterion(
                name=f"stage:{stage}",
                status=status,
                summary=(
                    f"Stage {stage}: Δ {counts.delta:+.1%} over {counts.n} items "
                    f"({counts.baseline_only} regressed, {counts.candidate_only} improved); {note}."
                ),
                threshold=(
                    f"no significant regression beyond −{margin:.1%} (stage_margin"
                    f"{'s.' + stage if stage in gate.stage_margins else ''}, McNemar "
                    f"p < {gate.alpha})"
                ),
                observed=counts.delta,
                evidence={
                    "items": counts.n,
                    "delta": counts.delta,
                    "mcnemar_p": p_value,
                    "baseline_only": counts.baseline_only,
                    "candidate_only": counts.candidate_only,
                    "margin": margin,
                },
            )
        )
    return criteria


def _safety_criterion(pairs: _Pairs, gate: GateConfig) -> Criterion | None:
    category = gate.safety_category
    if category is None:
        return None
    subset = pairs.subset(lambda o: o.category == category)
    counts = subset.counts()
    threshold = f"no net regression at all on category {category!r} (safety_category)"
    if counts.n == 0:
        return Criterion(
            name="safety",
            status="skipped",
            threshold=threshold,
            summary=f"The suite has no paired {category!r} items.",
        )
    regressed = [b.item_id for b, c in subset.items if b.correct and not c.correct]
    return Criterion(
        name="safety",
        status="fail" if counts.delta < 0 else "pass",
        summary=(
            f"{category}: {counts.both + counts.baseline_only} → "
            f"{counts.both + counts.candidate_only} of {counts.n} right "
            f"({counts.baseline_only} regressed, {counts.candidate_only} improved)."
        ),
        threshold=threshold,
        observed=counts.delta,
        evidence={
            "items": counts.n,
            "regressed_items": regressed,
            "baseline_only": counts.baseline_only,
            "candidate_only": counts.candidate_only,
        },
    )


def _budget(
    name: str,
    observed: float | None,
    baseline: float | None,
    limit: float | None,
    ratio_limit: float | None,
    unit: str,
    config_names: tuple[str, str],
) -> Criterion:
    parts = []
    if limit is not None:
        parts.append(f"≤ {limit:g} {unit} ({config_names[0]})")
    if ratio_limit is not None:
        parts.append(f"≤ {ratio_limit:g}× the baseline ({config_names[1]})")
    threshold = " and ".join(parts) or "no budget configured"
    ratio = observed / baseline if observed is not None and baseline else None
    summary = (
        f"{name.replace('_', ' ')}: candidate {observed if observed is None else f'{observed:.6g}'}"
        f" {unit} vs baseline {baseline if baseline is None else f'{baseline:.6g}'} {unit}."
    )
    evidence = {"candidate": observed, "baseline": baseline, "ratio": ratio}
    if not parts:
        return Criterion(name, "skipped", summary, threshold, observed, evidence)
    if observed is None:
        return Criterion(
            name, "insufficient", summary + " Nothing was measured.", threshold, None, evidence
        )
    over = (limit is not None and observed > limit) or (
        ratio_limit is not None and ratio is not None and ratio > ratio_limit
    )
    return Criterion(name, "fail" if over else "pass", summary, threshold, observed, evidence)


def rate_criterion(
    name: str, events: int, total: int, limit: float, what: str, config_name: str
) -> Criterion:
    rate = events / total if total else 0.0
    return Criterion(
        name=name,
        status="fail" if rate > limit else "pass",
        summary=f"{events} of {total} {what} ({rate:.1%}).",
        threshold=f"≤ {limit:.1%} ({config_name})",
        observed=rate,
        evidence={"events": events, "total": total},
    )


def _budget_criteria(
    baseline: SideResults, candidate: SideResults, gate: GateConfig
) -> list[Criterion]:
    def p95(side: SideResults) -> float | None:
        return stats.p95([o.latency_ms for o in side.settled])

    def cost(side: SideResults) -> float | None:
        costs = [o.cost_usd for o in side.settled if o.cost_usd is not None]
        return sum(costs) / len(costs) if costs else None

    settled = candidate.settled
    parse_errors = sum(1 for o in settled if o.status == "parse_error")
    return [
        _budget(
            "latency_p95",
            p95(candidate),
            p95(baseline),
            gate.max_latency_p95_ms,
            gate.max_latency_p95_ratio,
            "ms",
            ("max_latency_p95_ms", "max_latency_p95_ratio"),
        ),
        _budget(
            "cost_per_item",
            cost(candidate),
            cost(baseline),
            gate.max_cost_per_item_usd,
            gate.max_cost_per_item_ratio,
            "USD",
            ("max_cost_per_item_usd", "max_cost_per_item_ratio"),
        ),
        rate_criterion(
            "error_rate",
            candidate.failed_calls,
            candidate.calls,
            gate.max_error_rate,
            "candidate calls failed (error or timeout)",
            "max_error_rate",
        ),
        rate_criterion(
            "parse_error_rate",
            parse_errors,
            len(settled),
            gate.max_parse_error_rate,
            "settled candidate replies were unparseable",
            "max_parse_error_rate",
        ),
    ]


def _affected_items(pairs: _Pairs, gate: GateConfig) -> list[AffectedItem]:
    """Regressions first on the safety category, then by stage; capped at report_items."""

    def affected(b: ItemOutcome, c: ItemOutcome, reason: str) -> AffectedItem:
        return AffectedItem(
            item_id=b.item_id,
            stage=b.stage,
            category=b.category,
            expected=b.expected or c.expected,
            baseline_verdict=b.verdict,
            candidate_verdict=c.verdict,
            baseline_run_id=b.run_id,
            candidate_run_id=c.run_id,
            reason=reason,
        )

    regressions = [(b, c) for b, c in pairs.items if b.correct and not c.correct]
    regressions.sort(
        key=lambda bc: (bc[0].category != gate.safety_category, bc[0].stage or "", bc[0].item_id)
    )
    items = [affected(b, c, "regressed") for b, c in regressions]
    return items[: gate.report_items]


def decide(
    baseline: SideResults,
    candidate: SideResults,
    gate: GateConfig,
    *,
    suite: str,
    suite_version: str | None = None,
) -> GateDecision:
    """The gate's decision from both sides' per-item outcomes — no I/O, no LLM."""
    pairs = _pair(baseline, candidate)
    criteria = [*_accuracy_criteria(pairs, gate), *_stage_criteria(pairs, gate)]
    safety = _safety_criterion(pairs, gate)
    if safety is not None:
        criteria.append(safety)
    criteria.extend(_budget_criteria(baseline, candidate, gate))
    decision = overall(criteria)
    accuracy = next(c for c in criteria if c.name == "accuracy_non_inferiority")
    summary = {
        "paired_items": len(pairs.items),
        "baseline_items": len(baseline.outcomes),
        "candidate_items": len(candidate.outcomes),
        "baseline_unsettled": len(baseline.outcomes) - len(baseline.settled),
        "candidate_unsettled": len(candidate.outcomes) - len(candidate.settled),
        **{
            k: accuracy.evidence.get(k)
            for k in (
                "baseline_accuracy",
                "candidate_accuracy",
                "delta",
                "ci_low",
                "ci_high",
                "mcnemar_p",
                "baseline_only",
                "candidate_only",
            )
        },
        "failed": [c.name for c in criteria if c.status == "fail"],
        "insufficient": [c.name for c in criteria if c.status == "insufficient"],
        "gate_config": gate.model_dump(),
    }
    return GateDecision(
        decision_id=str(uuid.uuid4()),
        suite=suite,
        suite_version=suite_version,
        baseline=str(baseline.spec),
        candidate=str(candidate.spec),
        decision=decision,
        criteria=tuple(criteria),
        summary=summary,
        affected_items=tuple(_affected_items(pairs, gate)),
        decided_at=datetime.now(UTC),
    )
