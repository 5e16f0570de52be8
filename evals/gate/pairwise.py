"""The pairwise decision: a pure function of a judge's preferences between the two sides.

The unit is the item. Every settled judgment of an item (both orders, every trial) scores the
candidate 1 (win), ½ (tie) or 0 (loss); the item's score is their mean, so an item judged in
two orders and three trials still counts once. The win rate is the mean item score (ties
half); its interval resamples items (the orders and trials of one item stay together); the
sign test counts items the candidate won (score > ½) against items it lost (< ½), leaving
tied items out. Parse errors are never scored: they count against the judge's parse-error
budget. The statuses and the decision rule are those of `evals.gate.decision`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import fmean

from evals import stats
from evals.config import GateConfig
from evals.gate.decision import overall, rate_criterion, verdict_of
from evals.gate.outcomes import (
    VERDICT_SCORES,
    AffectedItem,
    Criterion,
    GateDecision,
    Judgment,
    PairwiseJudgments,
)

PARITY = 0.5


@dataclass(frozen=True, slots=True)
class ItemPreference:
    """One item's judgments folded into the candidate's score on it."""

    item_id: str
    stage: str | None
    category: str | None
    judgments: tuple[Judgment, ...]

    @property
    def score(self) -> float:
        return fmean(VERDICT_SCORES[j.outcome] for j in self.judgments)

    @property
    def outcome(self) -> str:
        return "win" if self.score > PARITY else "loss" if self.score < PARITY else "tie"

    @property
    def both_orders(self) -> bool:
        return {j.position for j in self.judgments} >= {"ab", "ba"}


@dataclass(frozen=True, slots=True)
class Tally:
    """Items won, tied and lost, and the sign test on the untied ones."""

    wins: int
    ties: int
    losses: int

    @classmethod
    def of(cls, items: list[ItemPreference]) -> Tally:
        outcomes = [i.outcome for i in items]
        return cls(outcomes.count("win"), outcomes.count("tie"), outcomes.count("loss"))

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def sign_p(self) -> float:
        return stats.sign_test_p(self.wins, self.losses)


def item_preferences(judgments: PairwiseJudgments) -> list[ItemPreference]:
    """The items with at least one scored judgment, by item id."""
    by_item: dict[str, list[Judgment]] = defaultdict(list)
    for judgment in judgments.judgments:
        if judgment.outcome is not None:
            by_item[judgment.item_id].append(judgment)
    return [
        ItemPreference(item_id, rows[0].stage, rows[0].category, tuple(rows))
        for item_id, rows in sorted(by_item.items())
    ]


def _win_rate(items: list[ItemPreference]) -> float:
    return fmean(i.score for i in items)


def _items_criterion(items: list[ItemPreference], gate: GateConfig) -> Criterion:
    n = len(items)
    both = sum(i.both_orders for i in items)
    return Criterion(
        name="pairwise_items",
        status="pass" if n >= gate.min_items else "insufficient",
        summary=f"{n} items judged ({both} in both orders).",
        threshold=f"at least {gate.min_items} judged items (min_items)",
        observed=float(n),
        evidence={"items": n, "both_orders_items": both},
    )


def _win_rate_criterion(items: list[ItemPreference], gate: GateConfig) -> Criterion:
    floor = gate.pairwise_min_win_rate
    threshold = (
        f"the {1 - gate.alpha:.0%} item-bootstrap CI of the win rate (ties half) must lie above "
        f"{floor:.1%} (pairwise_min_win_rate); fails when the win rate is below it with "
        f"sign-test p < {gate.alpha} or the whole CI is below it"
    )
    if not items:
        return Criterion(
            "pairwise_win_rate", "insufficient", "No item has a scored judgment.", threshold
        )
    tally = Tally.of(items)
    ci = stats.bootstrap_mean_ci(
        [i.score for i in items],
        confidence=1 - gate.alpha,
        n_resamples=gate.bootstrap_samples,
        seed=gate.seed,
    )
    rate, p_value = ci.estimate, tally.sign_p
    if ci.low > floor:
        status, verdict = "pass", f"the CI's lower end {ci.low:.1%} is above {floor:.1%}"
    elif ci.high < floor or (rate < floor and tally.losses > tally.wins and p_value < gate.alpha):
        status, verdict = "fail", f"preferred less than {floor:.1%} of the time"
    else:
        status, verdict = "insufficient", f"inconclusive: the CI reaches {ci.low:.1%}"
    return Criterion(
        name="pairwise_win_rate",
        status=status,
        summary=(
            f"Win rate {rate:.1%} ({1 - gate.alpha:.0%} CI {ci.low:.1%} … {ci.high:.1%}); items "
            f"won {tally.wins}, tied {tally.ties}, lost {tally.losses} (sign test p = "
            f"{p_value:.3g}); {verdict}."
        ),
        threshold=threshold,
        observed=rate,
        evidence={
            "win_rate": rate,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "confidence": ci.confidence,
            "sign_p": p_value,
            "item_wins": tally.wins,
            "item_ties": tally.ties,
            "item_losses": tally.losses,
            "judgments": sum(len(i.judgments) for i in items),
            "bootstrap_samples": gate.bootstrap_samples,
            "seed": gate.seed,
        },
    )


def _loss_rate_criterion(items: list[ItemPreference], gate: GateConfig) -> Criterion:
    limit = gate.pairwise_max_loss_rate
    tally = Tally.of(items)
    rate = tally.losses / tally.n if tally.n else 0.0
    summary = f"The judge preferred the baseline on {tally.losses} of {tally.n} items ({rate:.1%})."
    if limit is None:
        return Criterion("pairwise_loss_rate", "skipped", summary, "no limit configured", rate, {})
    return Criterion(
        name="pairwise_loss_rate",
        status="fail" if rate > limit else "pass",
        summary=summary,
        threshold=f"≤ {limit:.1%} of items lost (pairwise_max_loss_rate)",
        observed=rate,
        evidence={"item_losses": tally.losses, "items": tally.n},
    )


def _stage_criteria(items: list[ItemPreference], gate: GateConfig) -> list[Criterion]:
    """The accuracy gate's guardrail in preference terms: a stage fails when its win rate is
    below ½ − its margin and the sign test on its items is significant."""
    criteria = []
    for stage in sorted({i.stage or "-" for i in items}):
        subset = [i for i in items if (i.stage or "-") == stage]
        tally = Tally.of(subset)
        margin = gate.stage_margins.get(stage, gate.stage_margin)
        rate, p_value = _win_rate(subset), tally.sign_p
        status, note = verdict_of(
            beyond=rate < PARITY - margin,
            significant=p_value < gate.alpha,
            too_few=len(subset) < gate.min_stage_items,
            n=len(subset),
            p_value=p_value,
        )
        criteria.append(
            Criterion(
                name=f"stage:{stage}",
                status=status,
                summary=(
                    f"Stage {stage}: win rate {rate:.1%} over {len(subset)} items ({tally.wins} "
                    f"won, {tally.losses} lost); {note}."
                ),
                threshold=(
                    f"no significant preference for the baseline beyond {PARITY - margin:.1%} "
                    f"win rate (½ − stage_margin{'s.' + stage if stage in gate.stage_margins else ''}"
                    f", sign test p < {gate.alpha})"
                ),
                observed=rate - PARITY,
                evidence={
                    "items": len(subset),
                    "win_rate": rate,
                    "sign_p": p_value,
                    "item_wins": tally.wins,
                    "item_losses": tally.losses,
                    "margin": margin,
                },
            )
        )
    return criteria


def _safety_criterion(items: list[ItemPreference], gate: GateConfig) -> Criterion | None:
    category = gate.safety_category
    if category is None:
        return None
    subset = [i for i in items if i.category == category]
    tally = Tally.of(subset)
    threshold = f"the baseline preferred on no more {category!r} items than the candidate"
    if not subset:
        return Criterion(
            "safety", "skipped", f"The suite has no judged {category!r} items.", threshold
        )
    return Criterion(
        name="safety",
        status="fail" if tally.losses > tally.wins else "pass",
        summary=f"{category}: {tally.wins} won, {tally.ties} tied, {tally.losses} lost.",
        threshold=threshold,
        observed=(tally.wins - tally.losses) / tally.n,
        evidence={
            "items": tally.n,
            "lost_items": [i.item_id for i in subset if i.outcome == "loss"],
            "item_wins": tally.wins,
            "item_losses": tally.losses,
        },
    )


def _judge_criteria(judgments: PairwiseJudgments, gate: GateConfig) -> list[Criterion]:
    settled = [j for j in judgments.judgments if j.status in ("ok", "parse_error")]
    parse_errors = sum(1 for j in settled if j.status == "parse_error")
    return [
        rate_criterion(
            "judge_error_rate",
            judgments.failed_calls,
            judgments.calls,
            gate.max_error_rate,
            "judge calls failed (error or timeout)",
            "max_error_rate",
        ),
        rate_criterion(
            "judge_parse_error_rate",
            parse_errors,
            len(settled),
            gate.max_parse_error_rate,
            "settled judgments were unreadable (never scored)",
            "max_parse_error_rate",
        ),
    ]


def _affected(items: list[ItemPreference], gate: GateConfig) -> list[AffectedItem]:
    """Items the judge preferred the baseline on, safety first, then by stage."""
    lost = sorted(
        (i for i in items if i.outcome == "loss"),
        key=lambda i: (i.category != gate.safety_category, i.stage or "", i.item_id),
    )
    return [
        AffectedItem(
            item_id=i.item_id,
            stage=i.stage,
            category=i.category,
            expected=None,
            baseline_verdict=f"{sum(j.outcome == 'loss' for j in i.judgments)} preferred",
            candidate_verdict=f"{sum(j.outcome == 'win' for j in i.judgments)} preferred",
            baseline_run_id=None,
            candidate_run_id=next(j.run_id for j in i.judgments if j.outcome == "loss"),
            reason=f"lost (score {i.score:.2f} over {len(i.judgments)} judgments)",
        )
        for i in lost[: gate.report_items]
    ]


def decide_pairwise(judgments: PairwiseJudgments, gate: GateConfig, *, suite: str) -> GateDecision:
    """The gate's decision from a judge's stored preferences — no I/O, no LLM."""
    items = item_preferences(judgments)
    criteria = [
        _items_criterion(items, gate),
        _win_rate_criterion(items, gate),
        _loss_rate_criterion(items, gate),
        *_stage_criteria(items, gate),
    ]
    safety = _safety_criterion(items, gate)
    if safety is not None:
        criteria.append(safety)
    criteria.extend(_judge_criteria(judgments, gate))
    decision = overall(criteria)
    win_rate = next(c for c in criteria if c.name == "pairwise_win_rate")
    judge = (
        f"{judgments.judge}@{judgments.judge_prompt_version}"
        if judgments.judge_prompt_version
        else judgments.judge
    )
    summary = {
        "paired_items": len(items),
        "judge_model": judgments.judge,
        "judge_prompt_version": judgments.judge_prompt_version,
        **{
            k: win_rate.evidence.get(k)
            for k in (
                "win_rate",
                "ci_low",
                "ci_high",
                "sign_p",
                "item_wins",
                "item_ties",
                "item_losses",
                "judgments",
            )
        },
        "both_orders_items": sum(i.both_orders for i in items),
        "failed": [c.name for c in criteria if c.status == "fail"],
        "insufficient": [c.name for c in criteria if c.status == "insufficient"],
        "gate_config": gate.model_dump(),
    }
    return GateDecision(
        decision_id=str(uuid.uuid4()),
        suite=suite,
        suite_version=judgments.suite_version,
        baseline=judgments.baseline,
        candidate=judgments.candidate,
        decision=decision,
        criteria=tuple(criteria),
        summary=summary,
        affected_items=tuple(_affected(items, gate)),
        decided_at=datetime.now(UTC),
        kind="pairwise",
        judge=judge,
    )
