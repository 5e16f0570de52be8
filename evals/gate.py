"""The release gate: should the candidate (a model, or a prompt version) replace the baseline?

Both are graded on the same golden items, so the comparison is paired: each item is right or
wrong for each side, and only the items where they differ (discordant pairs) say which is
better. The decision is one of

* `deploy` — every criterion passed;
* `no-deploy` — some criterion failed (a regression beyond its margin, a blown budget);
* `insufficient-data` — nothing failed, but the data cannot show the candidate is not worse:
  too few paired items, too few discordant pairs, or too little power for the margin.

`decide` is a pure function of per-item outcomes (testable without any LLM); `evaluate_gate`
adds the warehouse: it runs what is missing through the runner, reads the settled rows back
from raw.eval_runs, decides, stores the decision in raw.gate_decisions and writes the
Markdown readiness report (evals/gate_report.py).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from evals import stats
from evals.config import Config, ConfigError, GateConfig

if TYPE_CHECKING:
    from evals.golden import Suite

log = logging.getLogger(__name__)

DECISIONS = ("deploy", "no-deploy", "insufficient-data")
EXIT_CODES = {"deploy": 0, "no-deploy": 1, "insufficient-data": 3}
STATUSES = ("pass", "warn", "fail", "insufficient", "skipped")


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """`MODEL[@PROMPT_VERSION]`: a configured model, optionally pinned to one prompt version."""

    model: str
    prompt_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        model, at, version = text.strip().partition("@")
        if not model or (at and not version):
            raise ValueError(f"expected MODEL or MODEL@PROMPT_VERSION, got {text!r}")
        return cls(model=model, prompt_version=version or None)

    def __str__(self) -> str:
        return f"{self.model}@{self.prompt_version}" if self.prompt_version else self.model


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One side's settled result on one golden item.

    `correct` is None when the item has no settled call (every attempt failed).
    """

    item_id: str
    stage: str | None
    category: str | None
    correct: bool | None
    status: str
    run_id: str | None = None
    verdict: str | None = None
    expected: str | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class SideResults:
    """All a side contributes: per-item outcomes and its call counts (failed attempts too)."""

    spec: ModelSpec
    outcomes: Mapping[str, ItemOutcome]
    calls: int
    failed_calls: int

    @property
    def settled(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes.values() if o.correct is not None]


# --- outputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    """One criterion of the gate with its verdict, the threshold in words, and its evidence."""

    name: str
    status: str
    summary: str
    threshold: str
    observed: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")


@dataclass(frozen=True, slots=True)
class AffectedItem:
    """An item the candidate got wrong where the baseline was right (or a safety item)."""

    item_id: str
    stage: str | None
    category: str | None
    expected: str | None
    baseline_verdict: str | None
    candidate_verdict: str | None
    baseline_run_id: str | None
    candidate_run_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    decision_id: str
    suite: str
    suite_version: str | None
    baseline: str
    candidate: str
    decision: str
    criteria: tuple[Criterion, ...]
    summary: dict[str, Any]
    affected_items: tuple[AffectedItem, ...]
    decided_at: datetime
    report_path: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "fail"]

    def insufficient(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "insufficient"]

    def criteria_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.criteria]


# --- the decision ---------------------------------------------------------------------------------


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
        criteria.append(Criterion(
            name="accuracy_non_inferiority", status="insufficient",
            summary="No item was graded by both sides.",
            threshold=f"candidate accuracy ≥ baseline − {margin:.1%}",
        ))
        return criteria
    confidence = 1 - gate.alpha
    ci = stats.paired_bootstrap_delta_ci(
        pairs.baseline, pairs.candidate, confidence=confidence,
        n_resamples=gate.bootstrap_samples, seed=gate.seed,
    )
    p_value = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
    low = ci.low
    conservative_low = None
    if counts.discordant < gate.min_discordant:
        # Too few discordant pairs for resampling to see the spread: bound the regression rate
        # from above as if every unseen regression were possible (Wilson upper bound of b/n).
        _, regress_high = stats.wilson_interval(counts.baseline_only, n, confidence)
        conservative_low = counts.candidate_only / n - float(regress_high)
        low = min(low, conservative_low)
    delta = counts.delta
    significant_regression = delta < -margin and p_value < gate.alpha
    if low > -margin:
        status = "pass"
        verdict = f"non-inferior: the CI's lower end {_pct(low)} is above −{margin:.1%}"
    elif significant_regression or ci.high < -margin:
        status = "fail"
        verdict = (f"worse by more than the margin: {_pct(delta)} "
                   f"(McNemar p = {p_value:.2g}, CI up to {_pct(ci.high)})")
    else:
        status = "insufficient"
        verdict = f"inconclusive: the CI reaches {_pct(low)}, beyond −{margin:.1%}"
    base_acc = (counts.both + counts.baseline_only) / n
    cand_acc = (counts.both + counts.candidate_only) / n
    criteria.append(Criterion(
        name="accuracy_non_inferiority",
        status=status,
        summary=(f"Accuracy {base_acc:.1%} → {cand_acc:.1%} (Δ {delta:+.1%}, "
                 f"{confidence:.0%} CI {ci.low:+.1%} … {ci.high:+.1%}, McNemar p = {p_value:.3g}); "
                 f"{verdict}."),
        threshold=(f"the {confidence:.0%} paired-bootstrap CI of Δ must lie above "
                   f"−{margin:.1%} (non_inferiority_margin); fails when Δ < −{margin:.1%} with "
                   f"McNemar p < {gate.alpha} or the whole CI is below it"),
        observed=delta,
        evidence={
            "baseline_accuracy": base_acc, "candidate_accuracy": cand_acc, "delta": delta,
            "ci_low": ci.low, "ci_high": ci.high, "confidence": confidence,
            "conservative_low": conservative_low, "mcnemar_p": p_value,
            "baseline_only": counts.baseline_only, "candidate_only": counts.candidate_only,
            "both": counts.both, "neither": counts.neither,
            "bootstrap_samples": gate.bootstrap_samples, "seed": gate.seed,
        },
    ))
    conclusive = status in ("pass", "fail")
    criteria.append(Criterion(
        name="discordant_pairs",
        status="pass" if counts.discordant >= gate.min_discordant or conclusive else "insufficient",
        summary=(f"{counts.discordant} items changed outcome ({counts.baseline_only} regressed, "
                 f"{counts.candidate_only} improved)."),
        threshold=(f"at least {gate.min_discordant} discordant pairs (min_discordant), unless "
                   "the accuracy criterion is already conclusive"),
        observed=float(counts.discordant),
        evidence={"discordant": counts.discordant},
    ))
    _, discordance_high = stats.wilson_interval(counts.discordant, n, confidence)
    one_sided = gate.alpha / 2
    power = stats.noninferiority_power(n, float(discordance_high), margin, one_sided)
    required = stats.noninferiority_required_n(float(discordance_high), margin, one_sided, gate.power)
    planning = (f"with {n} items the non-inferiority test has {power:.0%} power at a "
                f"{margin:.1%} margin; about {required} items would give {gate.power:.0%}")
    criteria.append(Criterion(
        name="power",
        status="pass" if power >= gate.power or conclusive else "insufficient",
        summary=(f"Moot, the accuracy result is conclusive ({planning})." if conclusive
                 else f"{planning[0].upper()}{planning[1:]}."),
        threshold=(f"power ≥ {gate.power:.0%} (power) at the discordance rate's upper bound "
                   f"{float(discordance_high):.1%}, unless the accuracy criterion is conclusive"),
        observed=power,
        evidence={"power": power, "required_items": required,
                  "discordance_rate_upper": float(discordance_high)},
    ))
    return criteria


def _stage_criteria(pairs: _Pairs, gate: GateConfig) -> list[Criterion]:
    stages = sorted({b.stage or "-" for b, _ in pairs.items})
    criteria = []
    for stage in stages:
        subset = pairs.subset(lambda o, s=stage: (o.stage or "-") == s)
        counts = subset.counts()
        margin = gate.stage_margins.get(stage, gate.stage_margin)
        p_value = stats.mcnemar_exact_p(counts.baseline_only, counts.candidate_only)
        beyond = counts.delta < -margin
        if counts.n < gate.min_stage_items:
            status, note = "skipped", f"only {counts.n} paired items: not assessed"
        elif beyond and p_value < gate.alpha:
            status, note = "fail", f"regressed beyond its margin (p = {p_value:.2g})"
        elif beyond:
            status, note = "warn", f"beyond its margin but not significant (p = {p_value:.2g})"
        else:
            status, note = "pass", "within its margin"
        criteria.append(Criterion(
            name=f"stage:{stage}",
            status=status,
            summary=(f"Stage {stage}: Δ {counts.delta:+.1%} over {counts.n} items "
                     f"({counts.baseline_only} regressed, {counts.candidate_only} improved); {note}."),
            threshold=(f"no significant regression beyond −{margin:.1%} (stage_margin"
                       f"{'s.' + stage if stage in gate.stage_margins else ''}, McNemar "
                       f"p < {gate.alpha})"),
            observed=counts.delta,
            evidence={"items": counts.n, "delta": counts.delta, "mcnemar_p": p_value,
                      "baseline_only": counts.baseline_only,
                      "candidate_only": counts.candidate_only, "margin": margin},
        ))
    return criteria


def _safety_criterion(pairs: _Pairs, gate: GateConfig) -> Criterion | None:
    category = gate.safety_category
    if category is None:
        return None
    subset = pairs.subset(lambda o: o.category == category)
    counts = subset.counts()
    threshold = f"no net regression at all on category {category!r} (safety_category)"
    if counts.n == 0:
        return Criterion(name="safety", status="skipped", threshold=threshold,
                         summary=f"The suite has no paired {category!r} items.")
    regressed = [b.item_id for b, c in subset.items if b.correct and not c.correct]
    return Criterion(
        name="safety",
        status="fail" if counts.delta < 0 else "pass",
        summary=(f"{category}: {counts.both + counts.baseline_only} → "
                 f"{counts.both + counts.candidate_only} of {counts.n} right "
                 f"({counts.baseline_only} regressed, {counts.candidate_only} improved)."),
        threshold=threshold,
        observed=counts.delta,
        evidence={"items": counts.n, "regressed_items": regressed,
                  "baseline_only": counts.baseline_only, "candidate_only": counts.candidate_only},
    )


def _budget(
    name: str, observed: float | None, baseline: float | None, limit: float | None,
    ratio_limit: float | None, unit: str, config_names: tuple[str, str],
) -> Criterion:
    parts = []
    if limit is not None:
        parts.append(f"≤ {limit:g} {unit} ({config_names[0]})")
    if ratio_limit is not None:
        parts.append(f"≤ {ratio_limit:g}× the baseline ({config_names[1]})")
    threshold = " and ".join(parts) or "no budget configured"
    ratio = observed / baseline if observed is not None and baseline else None
    summary = (f"{name.replace('_', ' ')}: candidate {observed if observed is None else f'{observed:.6g}'}"
               f" {unit} vs baseline {baseline if baseline is None else f'{baseline:.6g}'} {unit}.")
    evidence = {"candidate": observed, "baseline": baseline, "ratio": ratio}
    if not parts:
        return Criterion(name, "skipped", summary, threshold, observed, evidence)
    if observed is None:
        return Criterion(name, "insufficient", summary + " Nothing was measured.", threshold,
                         None, evidence)
    over = (limit is not None and observed > limit) or (
        ratio_limit is not None and ratio is not None and ratio > ratio_limit
    )
    return Criterion(name, "fail" if over else "pass", summary, threshold, observed, evidence)


def _rate_criterion(
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
        _budget("latency_p95", p95(candidate), p95(baseline), gate.max_latency_p95_ms,
                gate.max_latency_p95_ratio, "ms", ("max_latency_p95_ms", "max_latency_p95_ratio")),
        _budget("cost_per_item", cost(candidate), cost(baseline), gate.max_cost_per_item_usd,
                gate.max_cost_per_item_ratio, "USD",
                ("max_cost_per_item_usd", "max_cost_per_item_ratio")),
        _rate_criterion("error_rate", candidate.failed_calls, candidate.calls, gate.max_error_rate,
                        "candidate calls failed (error or timeout)", "max_error_rate"),
        _rate_criterion("parse_error_rate", parse_errors, len(settled), gate.max_parse_error_rate,
                        "settled candidate replies were unparseable", "max_parse_error_rate"),
    ]


def _affected_items(pairs: _Pairs, gate: GateConfig) -> list[AffectedItem]:
    """Regressions first on the safety category, then by stage; capped at report_items."""
    def affected(b: ItemOutcome, c: ItemOutcome, reason: str) -> AffectedItem:
        return AffectedItem(
            item_id=b.item_id, stage=b.stage, category=b.category, expected=b.expected or c.expected,
            baseline_verdict=b.verdict, candidate_verdict=c.verdict,
            baseline_run_id=b.run_id, candidate_run_id=c.run_id, reason=reason,
        )

    regressions = [(b, c) for b, c in pairs.items if b.correct and not c.correct]
    regressions.sort(key=lambda bc: (bc[0].category != gate.safety_category,
                                     bc[0].stage or "", bc[0].item_id))
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
    if any(c.status == "fail" for c in criteria):
        decision = "no-deploy"
    elif any(c.status == "insufficient" for c in criteria):
        decision = "insufficient-data"
    else:
        decision = "deploy"
    accuracy = next(c for c in criteria if c.name == "accuracy_non_inferiority")
    summary = {
        "paired_items": len(pairs.items),
        "baseline_items": len(baseline.outcomes),
        "candidate_items": len(candidate.outcomes),
        "baseline_unsettled": len(baseline.outcomes) - len(baseline.settled),
        "candidate_unsettled": len(candidate.outcomes) - len(candidate.settled),
        **{k: accuracy.evidence.get(k) for k in (
            "baseline_accuracy", "candidate_accuracy", "delta", "ci_low", "ci_high",
            "mcnemar_p", "baseline_only", "candidate_only")},
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


# --- configuration ----------------------------------------------------------------------------------


def gate_config_from_file(base: GateConfig, path: Path | str) -> GateConfig:
    """`base` overridden by a gate.yaml: either the GateConfig keys at the top level, or under
    a `gate:` key (so a copy of evalhouse.yaml's section works as is)."""
    from pydantic import ValidationError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: broken YAML: {exc}") from None
    if isinstance(data, dict) and set(data) == {"gate"}:
        data = data["gate"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of gate settings")
    try:
        return GateConfig.model_validate({**base.model_dump(), **data})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: "
            f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid gate configuration: {problems}") from None


# --- the warehouse -------------------------------------------------------------------------------------

_SIDE_SQL = """
select run_id::text, item_id, stage, category, role, status, verdict, expected_verdict, passed,
       latency_ms, cost_usd, started_at, trial, suite_version
from raw.eval_runs
where suite = %(suite)s and model = %(model)s and role = any(%(roles)s)
  and source in ('golden', 'ci') and item_id is not null
  and (%(prompt_version)s::text is null or prompt_version = %(prompt_version)s)
  and (%(suite_version)s::text is null or suite_version = %(suite_version)s)
"""
_JUDGE_SQL = """
select parent_run_id::text, passed, verdict, started_at
from raw.eval_runs
where role = 'judge' and status = 'ok' and parent_run_id = any(%(ids)s::uuid[])
  and (%(judge)s::text is null or model = %(judge)s)
"""


def _latest_settled(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    settled = [r for r in rows if r["status"] in ("ok", "parse_error")]
    if not settled:
        return None
    return max(settled, key=lambda r: (r["trial"] == 0, r["started_at"]))


def load_side(
    conn,
    suite: str,
    spec: ModelSpec,
    *,
    suite_version: str | None = None,
    judge: str | None = None,
    items: Iterable[str] | None = None,
) -> SideResults:
    """One side's outcomes from raw.eval_runs (golden and ci rows of the suite).

    A grader row is right when its verdict equals the expected verdict. An answer-suite
    candidate is right when its newest judge verdict passed (or, without a judge row, when the
    candidate row carries a deterministic `passed`). Per item the newest settled row counts
    (trial 0 preferred); failed attempts count as calls for the error rate. `items` restricts
    the side to the suite's current items; an item with rows but no settled one is unsettled.
    """
    from psycopg.rows import dict_row

    params = {"suite": suite, "model": spec.model, "prompt_version": spec.prompt_version,
              "suite_version": suite_version}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SIDE_SQL, {**params, "roles": ["grader"]}).fetchall()
        graded = bool(rows)
        if not graded:
            rows = cur.execute(_SIDE_SQL, {**params, "roles": ["candidate"]}).fetchall()
    wanted = set(items) if items is not None else None
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if wanted is None or row["item_id"] in wanted:
            by_item.setdefault(row["item_id"], []).append(row)
    chosen = {item_id: _latest_settled(item_rows) for item_id, item_rows in by_item.items()}
    verdicts: dict[str, dict[str, Any]] = {}
    if not graded:
        ids = [row["run_id"] for row in chosen.values() if row is not None]
        with conn.cursor(row_factory=dict_row) as cur:
            for judged in cur.execute(_JUDGE_SQL, {"ids": ids, "judge": judge}).fetchall():
                previous = verdicts.get(judged["parent_run_id"])
                if previous is None or judged["started_at"] > previous["started_at"]:
                    verdicts[judged["parent_run_id"]] = judged
    outcomes = {}
    for item_id, item_rows in by_item.items():
        row = chosen[item_id]
        first = item_rows[0]
        if row is None:
            outcomes[item_id] = ItemOutcome(item_id, first["stage"], first["category"], None,
                                            "error")
            continue
        correct, verdict = _correctness(row, verdicts.get(row["run_id"]), graded)
        outcomes[item_id] = ItemOutcome(
            item_id=item_id, stage=row["stage"], category=row["category"], correct=correct,
            status=row["status"], run_id=row["run_id"], verdict=verdict,
            expected=row["expected_verdict"], latency_ms=row["latency_ms"],
            cost_usd=row["cost_usd"],
        )
    calls = sum(len(v) for v in by_item.values())
    failed = sum(1 for v in by_item.values() for r in v if r["status"] in ("error", "timeout"))
    return SideResults(spec=spec, outcomes=outcomes, calls=calls, failed_calls=failed)


def _correctness(
    row: Mapping[str, Any], judged: Mapping[str, Any] | None, graded: bool
) -> tuple[bool | None, str | None]:
    """(right?, verdict shown) of a settled row; a parse error is a wrong answer, not a gap."""
    if row["status"] == "parse_error":
        return False, None
    if graded:
        return row["verdict"] is not None and row["verdict"] == row["expected_verdict"], row["verdict"]
    if judged is not None:
        return bool(judged["passed"]), judged["verdict"]
    if row["passed"] is not None:
        return bool(row["passed"]), row["verdict"]
    return None, None


_INSERT_DECISION = """
insert into raw.gate_decisions
    (decision_id, suite, suite_version, baseline, candidate, decision, criteria, summary,
     report_path, decided_at)
values (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)
"""


def store_decision(conn, decision: GateDecision) -> None:
    """Insert the decision into raw.gate_decisions (commits)."""
    with conn.transaction():
        conn.execute(_INSERT_DECISION, (
            decision.decision_id, decision.suite, decision.suite_version, decision.baseline,
            decision.candidate, decision.decision,
            json.dumps(decision.criteria_json(), default=str),
            json.dumps({**decision.summary,
                        "affected_items": [asdict(a) for a in decision.affected_items]},
                       default=str),
            decision.report_path, decision.decided_at,
        ))


# --- end to end -------------------------------------------------------------------------------------------


def _load_suite(config: Config, suite: str) -> Suite | None:
    """The suite as configured, or None when evalhouse.yaml does not list it."""
    if suite not in config.suites:
        return None
    from evals.golden import suites_from_config

    return suites_from_config(config.model_copy(update={"suites": {suite: config.suites[suite]}}))[suite]


def _current_prompt_version(suite: Suite) -> str:
    from evals.prompts import ANSWER_CANDIDATE, RUBRIC_GRADER, load_prompt

    return load_prompt(RUBRIC_GRADER if suite.kind == "grader" else ANSWER_CANDIDATE).version


def _run_missing(config: Config, suite: Suite, spec: ModelSpec, side: SideResults,
                 judge: str | None) -> bool:
    """Run the items this side has not settled (source `ci`); False when none were missing.

    Only the missing items are run: the runner gets the suite narrowed to them, after the full
    suite version is stored, so raw.golden_items still holds every item of that version and the
    calls carry the same item hashes and suite version as a full run.
    """
    missing = [item for item in suite.items
               if item.item_id not in side.outcomes or side.outcomes[item.item_id].correct is None]
    if not missing:
        return False
    current = _current_prompt_version(suite)
    if spec.prompt_version is not None and spec.prompt_version != current:
        raise ConfigError(
            f"{spec}: {len(missing)} items have no settled run with prompt version "
            f"{spec.prompt_version}, and only the current version ({current}) can be run; "
            "run them first, or gate on the current version"
        )
    from evals import runner, warehouse
    from evals.golden import store_suite

    with warehouse.connect() as conn:
        store_suite(conn, suite)
    log.info("gate: running %d missing items of %s for %s", len(missing), suite.name, spec)
    runner.run_suite(config, replace(suite, items=tuple(missing)), spec.model, judge,
                     source="ci")
    return True


def default_report_path(decision: GateDecision) -> Path:
    from evals.warehouse import evalhouse_home

    name = (f"{decision.suite}__{decision.candidate}__vs__{decision.baseline}__"
            f"{decision.decided_at:%Y%m%dT%H%M%SZ}.md").replace("/", "_").replace("@", "-")
    return evalhouse_home() / "gate-reports" / name


def evaluate_gate(
    config: Config,
    suite: str,
    baseline: str | ModelSpec,
    candidate: str | ModelSpec,
    gate_config: GateConfig | None = None,
    run_missing: bool = True,
    report_path: Path | str | None = None,
) -> GateDecision:
    """Run what is missing, read both sides back, decide, store, and write the report.

    The Dagster `release_gate` asset and `evalhouse gate` both call this.
    """
    from evals import warehouse
    from evals.gate_report import render_report

    gate = gate_config or config.gate
    specs = [s if isinstance(s, ModelSpec) else ModelSpec.parse(s) for s in (baseline, candidate)]
    golden = _load_suite(config, suite)
    judge = config.suites[suite].judge if suite in config.suites else None
    if golden is not None and golden.kind == "answer":
        from evals.runner import default_judge

        judge = default_judge(config, golden)
    version = golden.version if golden is not None else None
    items = [i.item_id for i in golden.items] if golden is not None else None
    with warehouse.connect() as conn:
        sides = [load_side(conn, suite, s, suite_version=version, judge=judge, items=items)
                 for s in specs]
    if golden is None and not any(side.outcomes for side in sides):
        raise ConfigError(f"unknown suite {suite!r}: not under `suites:` in the configuration "
                          "and no rows for it in the warehouse")
    if run_missing and golden is not None:
        reran = [_run_missing(config, golden, s, side, judge) for s, side in zip(specs, sides,
                                                                                  strict=True)]
        if any(reran):
            with warehouse.connect() as conn:
                sides = [load_side(conn, suite, s, suite_version=version, judge=judge, items=items)
                         for s in specs]
    decision = decide(sides[0], sides[1], gate, suite=suite, suite_version=version)
    path = Path(report_path) if report_path is not None else default_report_path(decision)
    decision = _with_report_path(decision, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(decision, base_url=config.alerts.base_url))
    with warehouse.connect() as conn:
        store_decision(conn, decision)
    return decision


def _with_report_path(decision: GateDecision, path: Path) -> GateDecision:
    return replace(decision, report_path=str(path.resolve()))
