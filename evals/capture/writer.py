"""The capture writer: a background thread that batches captured rows into the run log.

The app's thread only appends a finished RunRecord to a queue (``submit``); everything that
costs time happens here: redaction and verdict parsing (``prepare``), batching, the warehouse
write, and the spool when the warehouse is unreachable. ``flush()`` returns once every row
submitted before it is durable — committed to raw.eval_runs or fsync'd in the spool.

Failure model:
- the warehouse is unreachable (connection refused, server shut down, schema not there yet):
  the batch is appended to the spool first, the writer backs off and retries, and when a write
  succeeds again the spool is replayed (oldest segments first) and emptied;
- the warehouse refuses a row (bad data): the batch is retried row by row and only the refused
  rows are kept aside in the spool's ``rejected-*.jsonl`` (never retried, never silently lost);
- the app is killed: rows still in the queue (at most one flush interval's worth) are lost,
  everything acknowledged by ``flush()`` is in the warehouse or the spool, and the next writer
  started on the same spool directory replays it. Run ids are fixed at capture time and the run
  log ignores rows it already has, so no row is ever written twice.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from evals.capture.spool import Spool
from evals.redact import scrub
from evals.reviews import Review, write_reviews_of_present_runs
from evals.runlog import RunRecord, write_runs

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_STOP = object()
_RESCAN_S = 10.0
_BACKLOG_WARNING = 50_000


class WarehouseUnreachable(RuntimeError):
    """The warehouse cannot be reached now; the rows go to the spool."""


def reachable_url() -> str:
    """The warehouse URL, without starting the embedded server (capture must not manage it)."""
    from evals import warehouse
    from evals.warehouse.embedded import EmbeddedPostgresError

    if url := os.environ.get(warehouse.URL_ENV):
        return url
    try:
        return warehouse.embedded_server().url()
    except EmbeddedPostgresError as exc:
        raise WarehouseUnreachable(str(exc)) from None


@dataclass
class WriterStats:
    submitted: int = 0
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    rejected: int = 0
    dropped: int = 0
    outages: int = 0


def _refused() -> tuple[type[BaseException], ...]:
    """What says "this row is bad", not "the warehouse is gone": Postgres refusing its data, or
    Python unable to format it (a hand-built record with a wrong type)."""
    import psycopg

    return (psycopg.DataError, psycopg.IntegrityError, ValueError, TypeError)


def write_or_set_aside(
    conn: psycopg.Connection, records: Sequence[RunRecord], spool: Spool
) -> tuple[int, int]:
    """Write records (`evals.runlog.write_runs`); when the batch is refused, write it row by row
    and keep each refused row in the spool's rejects file with its reason. Returns (rows new to
    the log, rows set aside); any other error (an outage) propagates with nothing set aside."""
    try:
        return write_runs(conn, records), 0
    except _refused():
        pass
    inserted = rejected = 0
    for record in records:
        try:
            inserted += write_runs(conn, [record])
        except _refused() as exc:
            log.error(
                "capture: the warehouse refused run %s: %s", record.run_id, type(exc).__name__
            )
            spool.reject([record], f"{type(exc).__name__}: {scrub(str(exc))[:500]}")
            rejected += 1
    return inserted, rejected


class CaptureWriter:
    """Batches RunRecords from any thread into the warehouse, spooling through outages."""

    def __init__(
        self,
        spool: Spool,
        *,
        prepare: Callable[[RunRecord], RunRecord | None] | None = None,
        url: Callable[[], str] | str | None = None,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        connect_timeout_s: float = 3.0,
        retry_max_s: float = 30.0,
    ):
        self.spool = spool
        self._prepare = prepare
        self._url = url if callable(url) else (lambda: url) if url else reachable_url
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.retry_max_s = retry_max_s
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._conn = None
        self._down_until = 0.0
        self._down = False
        self._backoff = 0.0
        self._spool_dirty = True  # a crashed predecessor may have left segments
        self._last_scan = 0.0
        self._last_backlog_warning = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="evalhouse-capture", daemon=True)
        self._thread.start()

    # -- the app's side (any thread) ---------------------------------------------------------

    def submit(self, record: RunRecord) -> None:
        """Enqueue one finished row; O(1), never blocks, never touches the network or disk."""
        self.stats.submitted += 1
        self._queue.put(record)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted so far is committed or spooled; False on timeout."""
        if self._closed or not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Drain the queue (to the warehouse or the spool) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def healthy(self) -> bool:
        """False while the writer is backing off from an unreachable warehouse."""
        return time.monotonic() >= self._down_until

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, waiters, stop = self._collect()
            try:
                if batch:
                    self._persist(batch)
                    self._warn_if_behind()
                self._maybe_replay()
            except Exception:  # the thread must survive anything a batch can throw
                log.exception(
                    "capture writer: unexpected error; rows kept in the spool if possible"
                )
            for waiter in waiters:
                waiter.set()
        self._disconnect()
        self.spool.seal()

    def _collect(self) -> tuple[list[RunRecord], list[threading.Event], bool]:
        batch: list[RunRecord] = []
        waiters: list[threading.Event] = []
        deadline: float | None = None
        while len(batch) < self.batch_size:
            timeout = self.flush_interval_s if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if item is _STOP:
                self._drain_rest(batch, waiters)
                return batch, waiters, True
            if isinstance(item, threading.Event):
                waiters.append(item)
                break
            deadline = deadline or time.monotonic() + self.flush_interval_s
            prepared = self._prepared(item)
            if prepared is not None:
                batch.append(prepared)
        return batch, waiters, False

    def _drain_rest(self, batch: list[RunRecord], waiters: list[threading.Event]) -> None:
        """On close: take everything still queued, whatever the batch size."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, threading.Event):
                waiters.append(item)
            elif item is not _STOP and (prepared := self._prepared(item)) is not None:
                batch.append(prepared)

    def _warn_if_behind(self) -> None:
        """The queue is unbounded (the app never blocks); say so when it grows past a backlog."""
        backlog = self._queue.qsize()
        now = time.monotonic()
        if backlog > _BACKLOG_WARNING and now - self._last_backlog_warning > 60:
            self._last_backlog_warning = now
            log.warning(
                "capture: %d rows queued in memory; the writer is not keeping up "
                "(spread the app over more processes)",
                backlog,
            )

    def _prepared(self, record: RunRecord) -> RunRecord | None:
        if self._prepare is None:
            return record
        try:
            return self._prepare(record)
        except Exception:
            # Never store a row whose redaction failed: it may still hold a secret.
            log.exception("capture: preparing run %s failed; row dropped", record.run_id)
            self.stats.dropped += 1
            return None

    def _persist(self, batch: list[RunRecord]) -> None:
        if time.monotonic() < self._down_until:
            self._to_spool(batch)
            return
        try:
            self.stats.written += self._write(batch)
        except WarehouseUnreachable as exc:
            self._mark_down(exc)
            self._to_spool(batch)
        else:
            self._mark_up()

    def _to_spool(self, batch: Sequence[RunRecord]) -> None:
        try:
            self.spool.append(batch)
        except OSError:
            log.exception("capture: the spool refused %d rows; they are lost", len(batch))
            self.stats.dropped += len(batch)
            return
        self.stats.spooled += len(batch)
        self._spool_dirty = True

    def _maybe_replay(self) -> None:
        now = time.monotonic()
        if now < self._down_until:
            return
        if not self._spool_dirty and now - self._last_scan < _RESCAN_S:
            return
        self._last_scan = now
        if not self.spool.segments() and not self.spool.review_files():
            self._spool_dirty = False
            return
        try:
            self._connection()  # probe first: sealing the active segment for nothing wastes one
            result = self.spool.replay(self._write)
            self.spool.replay_reviews(self._store_reviews)
        except WarehouseUnreachable as exc:
            self._mark_down(exc)
            return
        self._mark_up()
        self.stats.replayed += result.rows
        self.stats.rejected += result.rejected  # spool lines that were no record
        self._spool_dirty = result.skipped_busy > 0
        if result.segments:
            log.info(
                "capture: replayed %d rows from %d spool segments", result.rows, result.segments
            )

    def _mark_down(self, exc: BaseException) -> None:
        self._disconnect()
        self._backoff = min(self.retry_max_s, max(0.25, self._backoff * 2))
        self._down_until = time.monotonic() + self._backoff
        if not self._down:
            self._down = True
            self.stats.outages += 1
            log.warning("capture: warehouse unreachable, spooling rows: %s", scrub(str(exc))[:300])

    def _mark_up(self) -> None:
        if self._down:
            log.warning("capture: warehouse reachable again")
        self._down, self._backoff, self._down_until = False, 0.0, 0.0

    # -- the warehouse -----------------------------------------------------------------------

    def _connection(self):
        import psycopg

        from evals.warehouse import libpq_url

        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            self._conn = psycopg.connect(
                libpq_url(self._url()),
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout_s)),
                application_name="evalhouse-capture",
            )
        except psycopg.Error as exc:
            raise WarehouseUnreachable(str(exc)) from exc
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def _write(self, records: Sequence[RunRecord]) -> int:
        """Commit records; rows the warehouse refuses are set aside one by one."""
        import psycopg

        try:
            inserted, rejected = write_or_set_aside(self._connection(), records, self.spool)
        except psycopg.Error as exc:  # connection lost, server shutting down, schema missing
            raise WarehouseUnreachable(str(exc)) from exc
        self.stats.rejected += rejected
        return inserted

    def _store_reviews(self, held: list[Review]) -> tuple[int, list[Review]]:
        """Held human reviews whose runs have landed (`Spool.hold_reviews`)."""
        import psycopg

        try:
            return write_reviews_of_present_runs(self._connection(), held)
        except psycopg.Error as exc:
            raise WarehouseUnreachable(str(exc)) from exc

    def stats_dict(self) -> dict[str, int]:
        return asdict(self.stats)
