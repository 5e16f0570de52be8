"""Production capture: the calls an app makes land in the run log without slowing the app.

Two ways in, one process-wide writer behind them:

- LiteLLM apps install the callback once and tag calls through metadata::

      from evals import capture
      capture.install()                        # reads evalhouse.yaml (capture: section)
      litellm.completion(..., metadata={"evalhouse": {"stage": "loops", "subject_id": "u-1"}})

- apps that grade without LiteLLM record calls explicitly::

      capture.capture(model="rules-v2", stage="loops", output_text=text, verdict="pass")
      with capture.capturing(model="my-model", stage="loops") as call:
          call.messages = messages
          call.output_text = my_client(messages)

Either way the app's thread only builds a RunRecord (run_id and idempotency key fixed there)
and enqueues it; redaction, verdict parsing, batching, the warehouse write and the spool happen
on the writer thread (`evals.capture.writer`). Rows default to source `production`, role
`grader` and the configured touchpoint.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.capture.prepare import RowPreparer, VerdictParser
from evals.capture.spool import Spool
from evals.capture.writer import CaptureWriter
from evals.redact import PiiRedactor
from evals.runlog import RunRecord, idempotency_key, new_run_id

if TYPE_CHECKING:
    from evals.capture.callback import EvalhouseCallback
    from evals.config import Config

log = logging.getLogger(__name__)

_lock = threading.Lock()
_writer: CaptureWriter | None = None
_callback: EvalhouseCallback | None = None
_defaults: dict[str, Any] = {}
_started_with: dict[str, Any] | None = None  # start()'s arguments, to start again after a fork


def _forget_parent_writer() -> None:
    """In a forked child (gunicorn with preload, multiprocessing): the parent's writer thread
    does not exist here, so the next row starts a writer of the child's own (same settings,
    its own spool segment). Rows queued in the parent stay the parent's to write."""
    global _lock, _writer
    _lock = threading.Lock()
    _writer = None


os.register_at_fork(after_in_child=_forget_parent_writer)


def spool_dir(config: Config) -> Path:
    """Where unwritten rows wait: `capture.spool_dir`, else EVALHOUSE_HOME/spool."""
    from evals.warehouse import evalhouse_home

    if config.capture.spool_dir:
        return config.resolve_path(config.capture.spool_dir)
    return evalhouse_home() / "spool"


def start(
    config: Config | None = None,
    *,
    redact: Callable[[str], str] | None = None,
    parse_verdict: VerdictParser | bool | None = True,
    url: str | None = None,
) -> CaptureWriter:
    """Start the process-wide writer (once; later calls return it). Closed at interpreter exit.

    `redact` is applied to every text after the shared scrubber, `capture.redact_pii` and
    `capture.redact_patterns`;
    `parse_verdict=True` fills verdict, score, feedback, issue tags and passed from a grader's
    reply for rows that name a configured suite (False: store the reply only).
    """
    global _writer, _started_with
    with _lock:
        if _writer is not None:
            return _writer
        _started_with = {
            "config": config,
            "redact": redact,
            "parse_verdict": parse_verdict,
            "url": url,
        }
        if config is None:
            from evals.config import load_config

            config = load_config()
        if parse_verdict is True:
            from evals.capture.verdicts import suite_verdict_parser

            parse_verdict = suite_verdict_parser(config)
        pii = PiiRedactor(config.capture.redact_pii, config.capture.redact_patterns)
        preparer = RowPreparer(pii, redact, parse_verdict or None)
        _writer = CaptureWriter(
            Spool(spool_dir(config)),
            prepare=preparer,
            url=url,
            batch_size=config.capture.batch_size,
            flush_interval_s=config.capture.flush_interval_s,
        )
        _defaults.clear()
        _defaults.update(source="production", role="grader", touchpoint=config.capture.touchpoint)
        return _writer


def install(config: Config | None = None, **start_options: Any) -> EvalhouseCallback:
    """Start the writer and add the capture callback to `litellm.callbacks` (idempotent)."""
    global _callback
    import litellm

    from evals.capture.callback import EvalhouseCallback
    from evals.litellm_compat import add_callback

    start(config, **start_options)
    with _lock:
        if _callback is None:
            _callback = EvalhouseCallback(_submit, _defaults)
        add_callback(litellm, _callback)
        return _callback


def _submit(record: RunRecord) -> None:
    """The callback's way in: the current writer, restarted in a forked child; after
    `shutdown()` (a LiteLLM logging thread finishing late at exit) the row is dropped."""
    writer = _writer
    if writer is None:
        if _started_with is None:
            log.debug("capture: run %s arrived after shutdown; not recorded", record.run_id)
            return
        writer = start(**_started_with)
    writer.submit(record)


def flush(timeout: float | None = 30.0) -> bool:
    """Block until every row captured so far is committed or spooled."""
    return _writer.flush(timeout) if _writer is not None else True


def shutdown(timeout: float | None = 30.0) -> None:
    """Remove the callback and drain the writer (called at exit; safe to call twice)."""
    global _writer, _callback, _started_with
    with _lock:
        writer, callback = _writer, _callback
        _writer, _callback, _started_with = None, None, None
    if callback is not None:
        import litellm

        from evals.litellm_compat import remove_callback

        remove_callback(litellm, callback)
    if writer is not None:
        writer.close(timeout)


atexit.register(shutdown)


def current_writer() -> CaptureWriter | None:
    return _writer


def _record(fields: dict[str, Any]) -> RunRecord:
    run_id = fields.pop("run_id", None) or new_run_id()
    # Shallow copies: the app may reuse its message list or inputs before the writer gets there.
    if fields.get("messages"):
        fields["messages"] = [dict(message) for message in fields["messages"]]
    for name in ("inputs", "params", "attributes"):
        if fields.get(name):
            fields[name] = dict(fields[name])
    fields.setdefault("idempotency_key", idempotency_key("capture", str(run_id)))
    fields.setdefault("started_at", datetime.now(UTC))
    fields.setdefault("status", "ok")
    return RunRecord(run_id=run_id, **{**_defaults, **fields})


def capture(*, model: str, error: BaseException | None = None, **columns: Any) -> uuid.UUID:
    """Record one finished call; `columns` are run-log columns (RunRecord fields).

    `error` marks the call failed (status error, or timeout for TimeoutError) with its class and
    (scrubbed) message. Returns the row's run_id, fixed now, before the row leaves the process.
    """
    writer = _writer or start(**(_started_with or {}))
    if error is not None:
        columns.setdefault("status", "timeout" if isinstance(error, TimeoutError) else "error")
        columns.setdefault("error_class", type(error).__name__)
        columns.setdefault("error_message", str(error))
    record = _record({"model": model, **columns})
    writer.submit(record)
    return record.run_id


@dataclass
class CapturedCall:
    """The mutable call inside `capturing()`: set what the block learns, it is recorded at exit."""

    run_id: uuid.UUID
    columns: dict[str, Any] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("run_id", "columns"):
            object.__setattr__(self, name, value)
        else:
            self.columns[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None


@contextmanager
def capturing(*, model: str, **columns: Any) -> Iterator[CapturedCall]:
    """Time a block and record it as one call; an exception is recorded (and re-raised)."""
    call = CapturedCall(run_id=columns.pop("run_id", None) or new_run_id(), columns=columns)
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    error: BaseException | None = None
    try:
        yield call
    except BaseException as exc:
        error = exc
        raise
    finally:
        call.columns.setdefault("latency_ms", (time.perf_counter() - began) * 1000)
        call.columns.setdefault("started_at", started_at)
        capture(model=model, error=error, run_id=call.run_id, **call.columns)
