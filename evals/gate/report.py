"""The readiness report of a release-gate decision, in Markdown.

One file a reviewer (or a pull-request comment) can read cold: the decision and why, a
scorecard of every criterion, each failed or inconclusive criterion with its threshold
explained, the per-stage picture, and the items that regressed with links to both runs —
the postmortem of a failed gate.
"""

from __future__ import annotations

import yaml

from evals.gate.outcomes import AffectedItem, Criterion, GateDecision

_STATUS_MARK = {
    "pass": "✅ pass",
    "warn": "⚠️ warn",
    "fail": "❌ fail",
    "insufficient": "❔ insufficient",
    "skipped": "➖ skipped",
}
_DECISION_TEXT = {
    "deploy": "every criterion passed: the candidate may replace the baseline.",
    "no-deploy": "at least one criterion failed: the candidate must not ship as it is.",
    "insufficient-data": (
        "nothing failed, but the data cannot show the candidate is not worse: "
        "grade more items (or accept a wider margin) and run the gate again."
    ),
}
# Why each kind of criterion exists, for the reader of a failed gate.
_WHY = {
    "paired_items": (
        "Both sides must be graded on the same items; with fewer, any difference is noise."
    ),
    "accuracy_non_inferiority": (
        "The candidate may be slightly worse than the baseline (the margin) but not more. The "
        "paired bootstrap resamples items, keeping each item's two outcomes together; the exact "
        "McNemar test looks only at items whose outcome changed."
    ),
    "discordant_pairs": (
        "Only items where the two sides disagree carry information about which is better; "
        "with very few, neither the McNemar test nor the bootstrap can see the spread."
    ),
    "power": (
        "Power is the chance the non-inferiority test passes when the two sides are truly "
        "equal. Too little, and a 'not proven' result says nothing about the candidate."
    ),
    "stage": (
        "A better total can hide a stage that got much worse; each stage is guarded on its own "
        "(an exact McNemar test on that stage's items against its margin)."
    ),
    "safety": "Safety items are a hard floor: the candidate may not get any more of them wrong.",
    "latency_p95": "The 95th-percentile latency of the candidate's calls against its budget.",
    "cost_per_item": "The mean cost of one graded item against its budget.",
    "error_rate": "Calls that failed outright (errors, timeouts), retried attempts included.",
    "parse_error_rate": "Replies that could not be parsed into a verdict count as wrong.",
    "pairwise_items": (
        "Items the judge compared the two sides on; an item's orders and trials are one unit."
    ),
    "pairwise_win_rate": (
        "How often the judge prefers the candidate (ties half), items weighted equally. The "
        "interval resamples items, keeping each item's orders and trials together; the exact "
        "sign test counts items won against items lost, tied items left out."
    ),
    "pairwise_loss_rate": "A cap on the share of items where the judge prefers the baseline.",
    "judge_error_rate": "Judge calls that failed outright (errors, timeouts).",
    "judge_parse_error_rate": "Judgments that could not be read are never scored.",
}


def _why(criterion: Criterion) -> str:
    return _WHY.get(criterion.name.split(":")[0], "")


def _observed(criterion: Criterion) -> str:
    value = criterion.observed
    if value is None:
        return "—"
    name = criterion.name.split(":")[0]
    if name in ("accuracy_non_inferiority", "stage", "safety"):
        return f"{value:+.1%}"
    if name in (
        "power",
        "error_rate",
        "parse_error_rate",
        "pairwise_win_rate",
        "pairwise_loss_rate",
        "judge_error_rate",
        "judge_parse_error_rate",
    ):
        return f"{value:.1%}"
    if name in ("paired_items", "discordant_pairs", "pairwise_items"):
        return f"{value:.0f}"
    if name == "latency_p95":
        return f"{value:.0f} ms"
    if name == "cost_per_item":
        return f"${value:.6f}"
    return f"{value:.6g}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _run_link(base_url: str, run_id: str | None, label: str) -> str:
    return f"[{label}]({base_url}/runs/{run_id})" if run_id else f"{label}: none"


def _scorecard(decision: GateDecision) -> list[str]:
    lines = [
        "## Scorecard",
        "",
        "| Criterion | Status | Observed | Threshold |",
        "|---|---|---|---|",
    ]
    for c in decision.criteria:
        lines.append(
            f"| {_cell(c.name)} | {_STATUS_MARK[c.status]} | {_observed(c)} "
            f"| {_cell(c.threshold)} |"
        )
    return lines


def _accuracy(decision: GateDecision) -> list[str]:
    s = decision.summary
    if s.get("delta") is None:
        return ["## Accuracy", "", "No item was graded by both sides."]
    return [
        "## Accuracy",
        "",
        f"- Paired items: {s['paired_items']} (baseline graded {s['baseline_items']}, "
        f"candidate {s['candidate_items']}; unsettled: baseline {s['baseline_unsettled']}, "
        f"candidate {s['candidate_unsettled']})",
        f"- Baseline `{decision.baseline}`: {s['baseline_accuracy']:.1%} · candidate "
        f"`{decision.candidate}`: {s['candidate_accuracy']:.1%}",
        f"- Δ = {s['delta']:+.1%}, paired-bootstrap CI {s['ci_low']:+.1%} … {s['ci_high']:+.1%}, "
        f"exact McNemar p = {s['mcnemar_p']:.3g}",
        f"- Items that changed outcome: {s['baseline_only']} regressed (baseline right, "
        f"candidate wrong), {s['candidate_only']} improved",
    ]


def _preference(decision: GateDecision) -> list[str]:
    s = decision.summary
    if s.get("win_rate") is None:
        return ["## Preference", "", "No item has a scored judgment."]
    return [
        "## Preference",
        "",
        f"- Judge `{decision.judge}`: {s['judgments']} scored judgments on {s['paired_items']} "
        f"items ({s['both_orders_items']} judged in both orders)",
        f"- Win rate of `{decision.candidate}` over `{decision.baseline}` (ties half): "
        f"{s['win_rate']:.1%}, item-bootstrap CI {s['ci_low']:.1%} … {s['ci_high']:.1%}",
        f"- Items won {s['item_wins']}, tied {s['item_ties']}, lost {s['item_losses']}; exact "
        f"sign test on the untied items p = {s['sign_p']:.3g}",
    ]


def _problems(decision: GateDecision) -> list[str]:
    lines: list[str] = []
    for title, chosen in (
        ("Failed criteria", decision.failed()),
        ("Inconclusive criteria", decision.insufficient()),
    ):
        if not chosen:
            continue
        lines += ["", f"## {title}", ""]
        for c in chosen:
            lines += [f"### {c.name}", "", c.summary, "", f"- Threshold: {c.threshold}"]
            if why := _why(c):
                lines.append(f"- Why: {why}")
            if c.name == "power" and "required_items" in c.evidence:
                lines.append(
                    f"- Items needed for the configured power: about {c.evidence['required_items']}"
                )
            lost = c.evidence.get("regressed_items") or c.evidence.get("lost_items")
            if c.name == "safety" and lost:
                ids = ", ".join(f"`{i}`" for i in lost)
                lines.append(f"- Regressed safety items: {ids}")
            lines.append("")
    return lines


def _stages(decision: GateDecision) -> list[str]:
    stages = [c for c in decision.criteria if c.name.startswith("stage:")]
    if not stages:
        return []
    if decision.kind == "pairwise":
        return _preference_stages(stages)
    lines = [
        "",
        "## Stages",
        "",
        "| Stage | Items | Δ | Regressed | Improved | McNemar p | Margin | Status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in stages:
        e = c.evidence
        lines.append(
            f"| {_cell(c.name.split(':', 1)[1])} | {e['items']} | {e['delta']:+.1%} "
            f"| {e['baseline_only']} | {e['candidate_only']} | {e['mcnemar_p']:.3g} "
            f"| −{e['margin']:.0%} | {_STATUS_MARK[c.status]} |"
        )
    return lines


def _preference_stages(stages: list[Criterion]) -> list[str]:
    lines = [
        "",
        "## Stages",
        "",
        "| Stage | Items | Win rate | Won | Lost | Sign test p | Margin | Status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in stages:
        e = c.evidence
        lines.append(
            f"| {_cell(c.name.split(':', 1)[1])} | {e['items']} | {e['win_rate']:.1%} "
            f"| {e['item_wins']} | {e['item_losses']} | {e['sign_p']:.3g} "
            f"| −{e['margin']:.0%} | {_STATUS_MARK[c.status]} |"
        )
    return lines


def _lost_items(decision: GateDecision, base_url: str) -> list[str]:
    lines = ["", "## Most affected items", ""]
    if not decision.affected_items:
        return [*lines, "The judge preferred the baseline on no item."]
    lines += [
        "Items the judge preferred the baseline on (safety first), with one losing judgment.",
        "",
        "| Item | Stage | Category | Baseline preferred | Candidate preferred | Judgment |",
        "|---|---|---|---|---|---|",
    ]
    for item in decision.affected_items:
        lines.append(
            f"| `{_cell(item.item_id)}` | {_cell(item.stage or '—')} | "
            f"{_cell(item.category or '—')} | {_cell(item.baseline_verdict)} | "
            f"{_cell(item.candidate_verdict)} | "
            f"{_run_link(base_url, item.candidate_run_id, 'judgment')} |"
        )
    return lines


def _items(decision: GateDecision, base_url: str) -> list[str]:
    if decision.kind == "pairwise":
        return _lost_items(decision, base_url)
    lines = ["", "## Most affected items", ""]
    if not decision.affected_items:
        return [*lines, "No item regressed."]
    lines += [
        "Items the baseline got right and the candidate got wrong (safety first).",
        "",
        "| Item | Stage | Category | Expected | Baseline | Candidate | Runs |",
        "|---|---|---|---|---|---|---|",
    ]
    item: AffectedItem
    for item in decision.affected_items:
        runs = (
            f"{_run_link(base_url, item.baseline_run_id, 'baseline')} · "
            f"{_run_link(base_url, item.candidate_run_id, 'candidate')}"
        )
        lines.append(
            f"| `{_cell(item.item_id)}` | {_cell(item.stage or '—')} | "
            f"{_cell(item.category or '—')} | {_cell(item.expected or '—')} | "
            f"{_cell(item.baseline_verdict or '—')} | {_cell(item.candidate_verdict or '—')} | "
            f"{runs} |"
        )
    return lines


def render_report(decision: GateDecision, *, base_url: str) -> str:
    """The readiness report; run links point at `{base_url}/runs/{run_id}`."""
    base_url = base_url.rstrip("/")
    gate = decision.summary.get("gate_config", {})
    lines = [
        f"# Release gate: `{decision.candidate}` vs `{decision.baseline}` on `{decision.suite}`",
        "",
        f"**Decision: {decision.decision.upper()}** (exit code {decision.exit_code}) — "
        f"{_DECISION_TEXT[decision.decision]}",
        "",
        f"Suite version `{decision.suite_version or 'any'}` · decided "
        f"{decision.decided_at:%Y-%m-%d %H:%M:%S} UTC · decision `{decision.decision_id}`",
        "",
        *_scorecard(decision),
        "",
        *(_preference(decision) if decision.kind == "pairwise" else _accuracy(decision)),
        *_problems(decision),
        *_stages(decision),
        *_items(decision, base_url),
        "",
        "## Reproduce",
        "",
        "```sh",
        f"evalhouse gate --suite {decision.suite} --baseline {decision.baseline} "
        f"--candidate {decision.candidate}"
        + (f" --judge {decision.judge}" if decision.judge else ""),
        "```",
        "",
        "Gate settings used:",
        "",
        "```yaml",
        yaml.safe_dump(gate, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
