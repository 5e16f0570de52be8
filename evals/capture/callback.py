"""The LiteLLM callback: every call an app makes through LiteLLM becomes one run-log row.

The app says what the call is about in the call's metadata, under one key::

    litellm.completion(model=..., messages=..., metadata={"evalhouse": {
        "touchpoint": "exercise-feedback", "subject_id": "learner-7f3a", "stage": "loops",
        "suite": "intro-python", "prompt_name": "grader", "prompt_version": "3e1c...",
    }})

Recognised keys are the run-log columns in `METADATA_COLUMNS`; `model` there names the model as
the app knows it (else the LiteLLM model string), `run_id` fixes the row's id ahead (so the app
can link its own records to the row), `started_at` (ISO 8601) and `latency_ms` replace the
measured values for backfills and simulations, `attributes` is kept as given. Values under
`capture` win over the shared keys: the same metadata also reaches the provider (the simulated
provider reads its item truth and per-call identity from it), and the row may need to say
something else. Anything else is ignored, and credentials never reach the row: api keys, headers
and endpoints live outside `optional_params`, which is filtered again by
`evals.capture.prepare.clean_params`.

The hooks run on LiteLLM's logging thread (sync success), on the app's event loop (async hooks)
or on the app's thread (sync failure), so they only build the record and enqueue it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from evals.llm import METADATA_KEY
from evals.runlog import RunRecord, idempotency_key, new_run_id

METADATA_COLUMNS = (
    "touchpoint",
    "subject_id",
    "stage",
    "suite",
    "suite_version",
    "item_id",
    "item_hash",
    "category",
    "prompt_name",
    "prompt_version",
    "rubric",
    "submission",
    "prior_context",
    "role",
    "batch_id",
    "trial",
    "orchestrator_run_id",
    "code_version",
    "source",
)
_RUN_NAMESPACE = uuid.UUID("5d0e1c1e-4b7a-4c55-9b0e-6f0a1d2c3b4a")


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _run_id(kwargs: Mapping[str, Any], event: str) -> uuid.UUID:
    """Stable per (LiteLLM call, outcome): a hook LiteLLM fires twice still makes one row."""
    call_id = kwargs.get("litellm_call_id")
    return uuid.uuid5(_RUN_NAMESPACE, f"{call_id}:{event}") if call_id else new_run_id()


def _output_text(response: Any) -> str | None:
    try:
        return response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None


def _error_status(exception: BaseException | None) -> str:
    import litellm

    return "timeout" if isinstance(exception, litellm.Timeout | TimeoutError) else "error"


def record_from_litellm(
    kwargs: Mapping[str, Any],
    response: Any,
    start_time: Any,
    end_time: Any,
    *,
    failed: bool,
    defaults: Mapping[str, Any],
) -> RunRecord:
    """One run-log row from a LiteLLM logging event (nothing here touches disk or network)."""
    litellm_params = kwargs.get("litellm_params") or {}
    shared = (litellm_params.get("metadata") or {}).get(METADATA_KEY) or {}
    tags = {**shared, **(shared.get("capture") or {})}
    logged = kwargs.get("standard_logging_object") or {}
    provider = kwargs.get("custom_llm_provider") or logged.get("custom_llm_provider")
    asked = tags.get("model") or (
        f"{provider}/{kwargs.get('model')}" if provider else kwargs.get("model")
    )
    columns = {**defaults, **{key: tags[key] for key in METADATA_COLUMNS if key in tags}}
    run_id = (
        uuid.UUID(str(tags["run_id"]))
        if tags.get("run_id")
        else _run_id(kwargs, "failure" if failed else "success")
    )
    started = tags.get("started_at") or logged.get("startTime") or start_time
    latency_ms = tags.get("latency_ms")
    if latency_ms is None and start_time is not None and end_time is not None:
        latency_ms = max(0.0, (end_time - start_time).total_seconds() * 1000)
    record = RunRecord(
        run_id=run_id,
        idempotency_key=tags.get("idempotency_key") or idempotency_key("capture", str(run_id)),
        model=str(asked),
        started_at=_as_utc(started),
        status="ok",
        inputs=dict(tags.get("inputs") or {}),
        messages=[dict(message) for message in kwargs.get("messages") or ()],
        params=dict(logged.get("model_parameters") or kwargs.get("optional_params") or {}),
        provider=provider,
        latency_ms=latency_ms,
        attributes={
            **(tags.get("attributes") or {}),
            "litellm_call_id": kwargs.get("litellm_call_id"),
        },
        **columns,
    )
    if failed:
        exception = kwargs.get("exception")
        record.status = _error_status(exception)
        record.error_class = type(exception).__name__ if exception is not None else "UnknownError"
        record.error_message = str(exception) if exception is not None else logged.get("error_str")
        return record
    record.output_text = _output_text(response)
    record.response_model = getattr(response, "model", None)
    usage = getattr(response, "usage", None)
    record.input_tokens = getattr(usage, "prompt_tokens", None)
    record.output_tokens = getattr(usage, "completion_tokens", None)
    record.cost_usd = kwargs.get("response_cost")
    return record


class EvalhouseCallback(CustomLogger):
    """A LiteLLM `CustomLogger` that hands every call to `submit` as a RunRecord."""

    def __init__(self, submit: Callable[[RunRecord], None], defaults: Mapping[str, Any]):
        super().__init__()
        self._submit = submit
        self._defaults = dict(defaults)

    def _capture(self, kwargs, response, start_time, end_time, failed: bool) -> None:
        self._submit(
            record_from_litellm(
                kwargs, response, start_time, end_time, failed=failed, defaults=self._defaults
            )
        )

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._capture(kwargs, response_obj, start_time, end_time, failed=False)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._capture(kwargs, response_obj, start_time, end_time, failed=True)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._capture(kwargs, response_obj, start_time, end_time, failed=False)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._capture(kwargs, response_obj, start_time, end_time, failed=True)
