"""The release gate: should the candidate (a model, or a prompt version) replace the baseline?

Both are graded on the same golden items, so the comparison is paired: each item is right or
wrong for each side, and only the items where they differ (discordant pairs) say which is
better. The decision is one of

* `deploy` — every criterion passed;
* `no-deploy` — some criterion failed (a regression beyond its margin, a blown budget);
* `insufficient-data` — nothing failed, but the data cannot show the candidate is not worse:
  too few paired items, too few discordant pairs, or too little power for the margin.

The package: `outcomes` (what goes in and comes out), `decision` (`decide`, a pure function of
per-item outcomes, testable without any LLM), `pairwise` (`decide_pairwise`, the same on a
judge's preferences between the two sides), `runs` (raw.eval_runs in, the runner for what is
missing, raw.gate_decisions out), `report` (the Markdown readiness report). `evaluate_gate` and
`evaluate_pairwise_gate` here tie them together for `evalhouse gate` and the Dagster
`release_gate` asset.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from evals.config import Config, ConfigError, GateConfig, validation_problems
from evals.gate.decision import decide
from evals.gate.outcomes import (
    DECISIONS,
    EXIT_CODES,
    STATUSES,
    AffectedItem,
    Criterion,
    GateDecision,
    ItemOutcome,
    Judgment,
    ModelSpec,
    PairwiseJudgments,
    SideResults,
)
from evals.gate.pairwise import decide_pairwise
from evals.gate.runs import (
    configured_suite,
    load_judgments,
    load_side,
    run_missing_items,
    store_decision,
)

__all__ = [
    "DECISIONS",
    "EXIT_CODES",
    "STATUSES",
    "AffectedItem",
    "Criterion",
    "GateDecision",
    "ItemOutcome",
    "Judgment",
    "ModelSpec",
    "PairwiseJudgments",
    "SideResults",
    "decide",
    "decide_pairwise",
    "default_report_path",
    "evaluate_gate",
    "evaluate_pairwise_gate",
    "gate_config_from_file",
    "load_judgments",
    "load_side",
    "store_decision",
]


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
        raise ConfigError(
            f"{path}: invalid gate configuration\n{validation_problems(exc)}"
        ) from None


def default_report_path(decision: GateDecision) -> Path:
    from evals.warehouse import evalhouse_home

    name = (
        (
            f"{decision.suite}__{decision.candidate}__vs__{decision.baseline}__"
            f"{decision.decided_at:%Y%m%dT%H%M%SZ}.md"
        )
        .replace("/", "_")
        .replace("@", "-")
    )
    return evalhouse_home() / "gate-reports" / name


def _finish(config: Config, decision: GateDecision, report_path: Path | str | None) -> GateDecision:
    """Write the readiness report and store the decision (with the report's path)."""
    from evals import warehouse
    from evals.gate.report import render_report

    path = Path(report_path) if report_path is not None else default_report_path(decision)
    decision = replace(decision, report_path=str(path.resolve()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(decision, base_url=config.alerts.base_url))
    with warehouse.connect() as conn:
        store_decision(conn, decision)
    return decision


def evaluate_pairwise_gate(
    config: Config,
    suite: str,
    baseline: str | ModelSpec,
    candidate: str | ModelSpec,
    judge: str | ModelSpec,
    gate_config: GateConfig | None = None,
    report_path: Path | str | None = None,
    run_missing: bool = False,
) -> GateDecision:
    """Decide on the judge's preferences between the two sides, store, and report.

    The sides are contestant labels (`MODEL[@PROMPT_VERSION]`, or a pairwise suite's
    `source_a` / `source_b`); the judge is `MODEL[@PROMPT_VERSION]`. It decides on what pairwise
    runs stored (`evalhouse run` on a pairwise suite, an import); with `run_missing`, when both
    sides are configured models and the judge is not pinned to an older prompt, it first judges
    (source `ci`) the pairs not yet judged, as `run_pairwise` would: settled pairs are skipped.
    """
    from evals import warehouse

    specs = [
        s if isinstance(s, ModelSpec) else ModelSpec.parse(s) for s in (baseline, candidate, judge)
    ]
    if specs[0] == specs[1]:
        raise ConfigError("the baseline and the candidate must differ")
    golden = configured_suite(config, suite)
    suite_version = golden.version if golden is not None else None
    sides_configured = all(spec.model in config.models for spec in specs)
    if run_missing and sides_configured and specs[2].prompt_version is None:
        from evals.pairwise import PairwiseRequest, run_pairwise

        calls = run_pairwise(
            config,
            PairwiseRequest(
                suite=golden or suite,
                judge=specs[2].model,
                baseline=str(specs[0]),
                candidate=str(specs[1]),
                source="ci",
                kind="gate",
            ),
        ).calls
        suite, suite_version = calls.suite, calls.suite_version
    with warehouse.connect() as conn:
        judgments = load_judgments(conn, suite, *specs, suite_version=suite_version)
    if not judgments.judgments and golden is None:
        raise ConfigError(
            f"no pairwise judgments of {specs[1]} against {specs[0]} by {specs[2]} on {suite!r}"
        )
    decision = decide_pairwise(judgments, gate_config or config.gate, suite=suite)
    return _finish(config, decision, report_path)


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

    gate = gate_config or config.gate
    specs = [s if isinstance(s, ModelSpec) else ModelSpec.parse(s) for s in (baseline, candidate)]
    golden = configured_suite(config, suite)
    judge = config.suites[suite].judge if suite in config.suites else None
    if golden is not None and golden.kind == "answer":
        from evals.runner import default_judge

        judge = default_judge(config, golden)
    version = golden.version if golden is not None else None
    items = [i.item_id for i in golden.items] if golden is not None else None

    def read_sides() -> list[SideResults]:
        with warehouse.connect() as conn:
            return [
                load_side(conn, suite, spec, suite_version=version, items=items) for spec in specs
            ]

    sides = read_sides()
    if golden is None and not any(side.outcomes for side in sides):
        raise ConfigError(
            f"unknown suite {suite!r}: not under `suites:` in the configuration "
            "and no rows for it in the warehouse"
        )
    if run_missing and golden is not None:
        ran = [
            run_missing_items(config, golden, spec, side, judge)
            for spec, side in zip(specs, sides, strict=True)
        ]
        if any(ran):
            sides = read_sides()
    decision = decide(sides[0], sides[1], gate, suite=suite, suite_version=version)
    return _finish(config, decision, report_path)
