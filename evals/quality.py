"""Data quality of one day of the run log, as a Great Expectations 1.x suite.

Drift statistics are only as good as the rows under them: a day whose rows lost their model,
carry negative costs, or are mostly parse errors would raise (or hide) drift for the wrong
reason. So each day's partition of raw.eval_runs is validated before anyone reads a trend from
it: schema, nulls, ranges, status shares, parse-error rate, cost ≥ 0 and sane latency.

GX runs on an in-memory DataFrame of the day (one query; a day is thousands of rows, and the
same transaction then records any alert). Plain library: Dagster's checks call `validate_day`.
GX is imported inside the function (6–9 s) so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from evals.config import DriftConfig
from evals.runlog import ROLES, SOURCES, STATUSES

if TYPE_CHECKING:
    import psycopg

REQUIRED_COLUMNS = (
    "run_id",
    "idempotency_key",
    "source",
    "role",
    "model",
    "stage",
    "started_at",
    "status",
    "verdict",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "sample_weight",
    "attempts",
)
NOT_NULL = ("run_id", "idempotency_key", "source", "role", "model", "started_at", "status")
MAX_SANE_LATENCY_MS = 10 * 60 * 1000
"""A call that took longer than ten minutes is a clock or unit bug, not a slow model."""
MAX_SANE_TOKENS = 2_000_000


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, with what it saw (GX's own result summary, trimmed)."""

    name: str
    column: str | None
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class QualityReport:
    """The suite's verdict on one day of one source of the run log."""

    day: date
    rows: int
    outcomes: list[ExpectationOutcome]
    example_run_ids: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(outcome.success for outcome in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]

    def describe_failures(self) -> str:
        return "; ".join(
            f"{o.name}({o.column or 'table'})"
            + (f": observed {o.observed}" if o.observed is not None else "")
            + (f", {o.unexpected_count} unexpected" if o.unexpected_count else "")
            for o in self.failures
        )


def _frame(cursor) -> Any:
    import pandas as pd

    columns = [column.name for column in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def load_day(conn: psycopg.Connection, day: date, sources: tuple[str, ...]) -> Any:
    """Rows of `sources` started on `day` (UTC) from raw.eval_runs, as a pandas DataFrame."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return _frame(
        conn.execute(
            f"select {', '.join(REQUIRED_COLUMNS)} from raw.eval_runs"
            " where started_at >= %s and started_at < %s and source = any(%s)",
            (start, start + timedelta(days=1), list(sources)),
        )
    )


def load_batch(conn: psycopg.Connection, batch_id: str, model: str) -> Any:
    """Rows of one batch (e.g. a night's golden runs, `golden:<day>`) for one model under test:
    its own calls and the judge calls on them. A batch run for a past day (a backfill) is
    dated by its batch, not by the clock, so it is selected by batch rather than by time."""
    return _frame(
        conn.execute(
            f"select {', '.join(REQUIRED_COLUMNS)} from raw.eval_runs r"
            " where batch_id = %s and (model = %s or exists (select 1 from raw.eval_runs p"
            " where p.run_id = r.parent_run_id and p.model = %s))",
            (batch_id, model, model),
        )
    )


def expectations(drift: DriftConfig, *, dated_by_day: bool) -> list[Any]:
    """The suite, built from the drift thresholds of evalhouse.yaml so both agree.

    `dated_by_day`: the rows were selected by their day, so every one must start inside it.
    """
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    suite: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectTableColumnsToMatchSet(column_set=list(REQUIRED_COLUMNS), exact_match=False),
        *(gxe.ExpectColumnValuesToNotBeNull(column=column) for column in NOT_NULL),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=list(SOURCES)),
        gxe.ExpectColumnValuesToBeInSet(column="role", value_set=list(ROLES)),
        gxe.ExpectColumnValuesToBeBetween(column="cost_usd", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="latency_ms", min_value=0, max_value=MAX_SANE_LATENCY_MS
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="input_tokens", min_value=0, max_value=MAX_SANE_TOKENS
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="output_tokens", min_value=0, max_value=MAX_SANE_TOKENS
        ),
        gxe.ExpectColumnValuesToBeBetween(column="sample_weight", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="attempts", min_value=0, max_value=100),
        # Status shares: the mean of a 0/1 indicator is the share of the day's rows.
        gxe.ExpectColumnMeanToBeBetween(
            column="is_parse_error", min_value=0, max_value=drift.max_parse_error_rate
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="is_failed", min_value=0, max_value=drift.max_error_rate
        ),
        # A settled grading or judging call has a verdict (a candidate's answer has none; a
        # parse error keeps its raw text instead).
        gxe.ExpectColumnValuesToNotBeNull(
            column="verdict",
            row_condition=(Column("status") == "ok") & (Column("role") != "candidate"),
        ),
    ]
    if dated_by_day:
        suite.append(gxe.ExpectColumnValuesToBeInSet(column="in_partition", value_set=[True]))
    return suite


def _with_indicators(frame: Any, day: date) -> Any:
    """Add the 0/1 and boolean columns the share and window expectations read."""
    import pandas as pd

    frame = frame.copy()
    start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
    started = pd.to_datetime(frame["started_at"], utc=True)
    frame["in_partition"] = (started >= start) & (started < start + pd.Timedelta(days=1))
    frame["is_parse_error"] = (frame["status"] == "parse_error").astype(float)
    frame["is_failed"] = frame["status"].isin(["error", "timeout"]).astype(float)
    for column in ("latency_ms", "cost_usd", "sample_weight"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("input_tokens", "output_tokens", "attempts"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def validate_day(
    frame: Any, day: date, drift: DriftConfig, *, dated_by_day: bool = True
) -> QualityReport:
    """Run the suite on one day's rows (a DataFrame with REQUIRED_COLUMNS)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("run_log")
        .add_dataframe_asset(f"day_{day:%Y%m%d}")
        .add_batch_definition_whole_dataframe("day")
        .get_batch(batch_parameters={"dataframe": _with_indicators(frame, day)})
    )
    suite = context.suites.add(
        gx.ExpectationSuite(
            name="run_log_day", expectations=expectations(drift, dated_by_day=dated_by_day)
        )
    )
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}
    )
    outcomes = [_outcome(item) for item in result.results]
    failing_ids = _failing_run_ids(frame, outcomes)
    return QualityReport(day=day, rows=len(frame), outcomes=outcomes, example_run_ids=failing_ids)


def _outcome(item: Any) -> ExpectationOutcome:
    config = item.expectation_config
    details = item.result or {}
    return ExpectationOutcome(
        name=config.type,
        column=config.kwargs.get("column"),
        success=bool(item.success),
        observed=_plain(details.get("observed_value")),
        unexpected_count=details.get("unexpected_count"),
        unexpected_examples=[_plain(v) for v in details.get("partial_unexpected_list", [])][:5],
    )


def _plain(value: Any) -> Any:
    """Numbers and strings only, so outcomes serialise into alert evidence and Dagster metadata."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 6)
    return str(value)


def _failing_run_ids(frame: Any, outcomes: list[ExpectationOutcome]) -> list[str]:
    """A few rows to open: for a failed column expectation, rows that break it."""
    import pandas as pd

    if frame.empty or all(outcome.success for outcome in outcomes):
        return []
    mask = pd.Series(False, index=frame.index)
    for outcome in outcomes:
        if outcome.success or outcome.column not in frame.columns:
            continue
        column = frame[outcome.column]
        if outcome.column in NOT_NULL or outcome.name.endswith("not_be_null"):
            mask |= column.isna()
        if outcome.unexpected_examples:
            mask |= column.astype(str).isin([str(v) for v in outcome.unexpected_examples])
    if outcome_failed(outcomes, "expect_column_mean_to_be_between"):
        mask |= frame["status"].isin(["parse_error", "error", "timeout"])
    return [str(run_id) for run_id in frame.loc[mask, "run_id"].head(5)]


def outcome_failed(outcomes: list[ExpectationOutcome], name: str) -> bool:
    return any(outcome.name == name and not outcome.success for outcome in outcomes)
