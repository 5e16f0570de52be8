"""`release_gate`: deploy / no-deploy / insufficient-data for a candidate, as an asset.

Launched by hand (Materialize → launchpad) with the suite, baseline and candidate as run
config; `evals.gate` runs what is missing, decides and stores the decision (raw.gate_decisions
+ a readiness report). The blocking check `release_gate_passes` fails unless the decision is
`deploy`, so a job that continues after the gate (a deploy step, say) stops on a no.
"""

import dagster as dg

from orchestration.lib import keys
from orchestration.lib.resources import EvalhouseResource


class ReleaseGateConfig(dg.Config):
    """What to compare. MODEL or MODEL@PROMPT_VERSION, as in `evalhouse gate`; a `judge`
    decides on that judge's stored pairwise preferences instead (`evalhouse gate --judge`)."""

    suite: str = "intro-python"
    baseline: str = "tutor-small"
    candidate: str = "tutor-large"
    run_missing: bool = True
    judge: str = ""


@dg.asset(
    key=keys.RELEASE_GATE,
    group_name="release",
    deps=[keys.GOLDEN_SETS],
    kinds={"python", "postgres"},
    description=(
        "Release gate: the candidate vs the baseline on the same golden items (paired McNemar, "
        "bootstrap CI, non-inferiority, per-stage guardrails, budgets) → deploy / no-deploy / "
        "insufficient-data, stored in raw.gate_decisions with a readiness report."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            name="release_gate_passes",
            asset=keys.RELEASE_GATE,
            blocking=True,
            description="Passes only on a `deploy` decision.",
        )
    ],
)
def release_gate(config: ReleaseGateConfig, evalhouse: EvalhouseResource):
    """Decide, store, and report the gate."""
    from evals.gate import evaluate_gate, evaluate_pairwise_gate

    if config.judge:
        decision = evaluate_pairwise_gate(
            evalhouse.config,
            config.suite,
            config.baseline,
            config.candidate,
            config.judge,
            run_missing=config.run_missing,
        )
    else:
        decision = evaluate_gate(
            evalhouse.config,
            config.suite,
            config.baseline,
            config.candidate,
            run_missing=config.run_missing,
        )
    summary = _as_metadata(decision)
    yield dg.MaterializeResult(metadata=summary)
    yield dg.AssetCheckResult(
        check_name="release_gate_passes",
        passed=summary["decision"] == "deploy",
        metadata=summary,
        description=f"{config.candidate} vs {config.baseline} on {config.suite}: {summary['decision']}",
    )


def _as_metadata(decision) -> dict:
    """The decision, its failed criteria and where the report is, for the UI."""
    return {
        "decision": decision.decision,
        "decision_id": decision.decision_id,
        "suite_version": decision.suite_version or "-",
        "failed_criteria": dg.MetadataValue.json([c.name for c in decision.failed()]),
        "insufficient_criteria": dg.MetadataValue.json([c.name for c in decision.insufficient()]),
        "criteria": dg.MetadataValue.json(decision.criteria_json()),
        "report": dg.MetadataValue.path(decision.report_path) if decision.report_path else "-",
    }
