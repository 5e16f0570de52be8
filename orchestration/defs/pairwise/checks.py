"""`pairwise_judge_bias`: a pairwise judge whose position bias or inconsistency passed its level.

The detector is `evals.drift.detect_judge_bias` (levels under `drift:` in evalhouse.yaml,
`pairwise_max_position_bias`, `pairwise_max_inconsistency`, `pairwise_min_pairs`); this module
only reads `fct_pairwise_judge_bias` (queries/, the dbt exposure `pairwise_checks`), dates the
findings by the run's night (the newest partition day, else today in UTC), and records them in
the transaction that read the mart, as the drift checks do: an alert per judge cohort, renewed
night by night while it lasts and resolved by a night it no longer fires. Never blocking.
"""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import psycopg
from dagster_dbt import get_asset_key_for_model
from psycopg.rows import dict_row

from evals import drift
from evals.alerts import AlertDraft
from evals.drift.judge_bias import KINDS
from evals.marts import load_query
from orchestration.lib.alerting import check_result, run_id_of
from orchestration.lib.partitions import days_of
from orchestration.lib.resources import EvalhouseResource

QUERIES = Path(__file__).with_name("queries")
MART = "fct_pairwise_judge_bias"
EXAMPLES_PER_FINDING = 3


def _examples(conn: psycopg.Connection, finding: drift.Finding) -> list[str]:
    """The cohort's newest judgments, to open from the alert (each shows its sibling orders)."""
    cohort = finding.evidence["cohort"]
    rows = conn.execute(
        "select run_id from raw.eval_runs where role = 'judge' and attributes ? 'contestant_a'"
        " and suite = %s and suite_version is not distinct from %s and model = %s"
        " and prompt_version is not distinct from %s and source = %s"
        f" order by started_at desc limit {EXAMPLES_PER_FINDING}",
        (
            cohort["suite"],
            cohort["suite_version"],
            cohort["judge_model"],
            cohort["judge_prompt_version"],
            cohort["source"],
        ),
    ).fetchall()
    return [str(row[0]) for row in rows]


def pairwise_judge_bias(
    context: dg.AssetCheckExecutionContext, evalhouse: EvalhouseResource
) -> dg.AssetCheckResult:
    """Position bias and inconsistency of every pairwise judge cohort against their levels."""
    config = evalhouse.config
    night = max(days_of(context), default=None) or datetime.now(UTC).date()
    with evalhouse.connect() as conn, conn.transaction():
        rows = conn.cursor(row_factory=dict_row).execute(load_query(QUERIES / "judge_bias.sql"))
        rows = rows.fetchall()
        findings = drift.detect_judge_bias(rows, config.drift, as_of=night)
        drafts: dict[date, list[AlertDraft]] = {
            night: [
                AlertDraft.from_finding(
                    finding.with_examples(_examples(conn, finding)),
                    orchestrator_run_id=run_id_of(context),
                )
                for finding in findings
            ]
        }
        return check_result(
            conn,
            drafts,
            kinds=KINDS,
            alerts=config.alerts,
            metadata={
                "night": night.isoformat(),
                "cohorts": len(rows),
                "findings": dg.MetadataValue.json(
                    [f"{f.kind} {f.subject}: {f.observed:.3f}" for f in findings]
                ),
            },
            description=f"{len(findings)} finding(s) over {len(rows)} judge cohort(s)",
        )


def judge_bias_check(warehouse: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """The check on the mart's asset among the dbt assets `warehouse` (key from the manifest)."""
    return dg.asset_check(
        asset=get_asset_key_for_model([warehouse], MART),
        name="pairwise_judge_bias",
        description=(
            "A pairwise judge's position bias (share of inconsistent pairs favouring the first "
            "slot) or inconsistency across orders, per cohort, confidently past its level "
            "(drift.pairwise_max_position_bias / pairwise_max_inconsistency)."
        ),
    )(pairwise_judge_bias)
