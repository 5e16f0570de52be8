"""The run log (raw.eval_runs): one row per LLM call, written idempotently, read back whole.

Every call leaves a row, errors included. A logical call is identified by its idempotency key;
the warehouse holds at most one *settled* row (ok / parse_error) per key and any number of
failed ones, so a re-run retries failures and skips what settled. Writes use
`ON CONFLICT DO NOTHING`, which also makes replaying a batch (spool, crash recovery) harmless.

Text Postgres cannot hold (a NUL, an unpaired UTF-16 surrogate such as a truncated emoji from a
JavaScript client) never costs a batch: `write_runs` stores such a row with each of those
characters replaced by U+FFFD and the columns named in `attributes.unstorable_text`; every
other row of the batch is stored verbatim (docs/run-log.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import re
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import orjson
import psycopg

from evals.warehouse import conninfo_of

SOURCES = ("golden", "production", "production_sample", "replay", "import", "ci", "rejudge")
ROLES = ("candidate", "judge", "grader")
STATUSES = ("ok", "error", "timeout", "parse_error")
SETTLED_STATUSES = ("ok", "parse_error")


def new_run_id() -> uuid.UUID:
    """A new call's run id: time-ordered (UUID version 7, RFC 9562: 48 bits of Unix
    milliseconds, then 74 random bits), so a day's new calls land at the right edge of every
    b-tree keyed by run id (raw.eval_runs' primary key, int_eval_runs' unique index) instead of
    on random leaf pages of an index as large as the history (docs/benchmarks.md)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return uuid.UUID(int=value)


@dataclass(slots=True)
class RunRecord:
    """One LLM call as stored in raw.eval_runs (see docs/run-log.md for each column)."""

    idempotency_key: str
    source: str
    role: str
    model: str
    started_at: datetime
    status: str
    run_id: uuid.UUID = field(default_factory=new_run_id)
    batch_id: str | None = None
    parent_run_id: uuid.UUID | None = None
    trial: int = 0
    touchpoint: str | None = None
    suite: str | None = None
    suite_version: str | None = None
    item_id: str | None = None
    item_hash: str | None = None
    stage: str | None = None
    category: str | None = None
    subject_id: str | None = None
    orchestrator_run_id: str | None = None
    code_version: str | None = None
    rubric: str | None = None
    submission: str | None = None
    prior_context: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    response_model: str | None = None
    provider: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    output_text: str | None = None
    verdict: str | None = None
    passed: bool | None = None
    score: float | None = None
    feedback: dict[str, Any] | None = None
    issue_tags: list[str] = field(default_factory=list)
    expected_verdict: str | None = None
    sample_weight: float | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    timings: dict[str, float] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error_class: str | None = None
    error_message: str | None = None
    attempts: int = 1

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {self.source!r}")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))
_JSON_COLUMNS = frozenset({"inputs", "messages", "params", "feedback", "timings", "attributes"})


def idempotency_key(*parts: Any) -> str:
    """sha256 over the canonical JSON of the parts that make a call the same call.

    The runner passes (batch key, item hash, role, model, prompt version, params, trial).
    """
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json(value: Any) -> str:
    """JSON text for a jsonb column; orjson is ~5x the stdlib on the write path's fat rows."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an int beyond 64 bits: the stdlib handles what orjson refuses
        return json.dumps(value, ensure_ascii=False, default=str)


# COPY text format: one line per row, tab-separated, \N for NULL, backslash escapes.
# Text beats binary COPY (whose per-value dumpers cost ~3x), and client CPU caps the write rate
# as much as the server does: formatting serves the writer and the ceiling it is measured
# against. So a chunk is formatted column by column, each column with bulk string operations
# in C (one join, one scan for characters to escape, one split), not value by value: ~2x
# cheaper per row than a Python call per value (docs/benchmarks.md).
_NULL = "\\N"
_SEP = "\x00"  # joins a column's values for bulk work: no storable text holds a NUL


def _escape(text: str) -> str:
    # str.replace behind an `in` test: a scan in C; str.translate is far slower on long text.
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _copy_text(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, str):
        return _escape(value)
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _with_nulls(values: list[Any], texts: list[str]) -> list[str]:
    return [_NULL if value is None else text for value, text in zip(values, texts, strict=True)]


def _text_column(values: list[Any]) -> list[str]:
    nulls = values.count(None)
    if nulls == len(values):
        return [_NULL] * nulls
    plain = ["" if value is None else value for value in values] if nulls else values
    try:
        joined = _SEP.join(plain)
    except TypeError:  # a value that is not a string
        return [_copy_text(value) for value in values]
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        plain = _escape(joined).split(_SEP)
        if len(plain) != len(values):  # a NUL of the caller's: Postgres refuses it anyway
            return [_copy_text(value) for value in values]
    return _with_nulls(values, plain) if nulls else plain


_PLAIN_SCALARS = frozenset({int, float, uuid.UUID})
# 32 hex digits, which Postgres reads as the same uuid: a third of the cost of str(uuid).
_UUID_HEX = operator.attrgetter("hex")


def _scalar_column(values: list[Any]) -> list[str]:
    types = set(map(type, values))
    if types == {uuid.UUID}:
        return list(map(_UUID_HEX, values))
    if types <= _PLAIN_SCALARS:
        return list(map(str, values))
    if types == {datetime}:
        return list(map(datetime.isoformat, values))
    return [_copy_text(value) for value in values]


def _json_column(values: list[Any]) -> list[str]:
    nulls = values.count(None)
    if nulls == len(values):
        return [_NULL] * nulls
    # JSON text holds no raw tab, newline or NUL (they are escaped), only backslashes to double.
    joined = _SEP.join([_json(value) for value in values if value is not None])
    texts = joined.replace("\\", "\\\\").split(_SEP) if "\\" in joined else joined.split(_SEP)
    if nulls:
        present = iter(texts)
        return [_NULL if value is None else next(present) for value in values]
    return texts


def _array_column(values: list[Any]) -> list[str]:
    try:
        joined = "".join(chain.from_iterable(filter(None, values)))
    except TypeError:  # a value that is not a string
        return [_copy_array(value) for value in values]
    if "\\" in joined or '"' in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return [_copy_array(value) for value in values]
    # Nothing to escape (tags are words): quote each element, no per-element work.
    return [
        _NULL if value is None else '{"' + '","'.join(value) + '"}' if value else "{}"
        for value in values
    ]


def _copy_array(values: Sequence[str] | None) -> str:
    if values is None:
        return _NULL
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return _escape("{" + ",".join(quoted) + "}")


def _column_format(f) -> tuple[Any, Any]:
    if f.name in _JSON_COLUMNS:
        formatter = _json_column
    elif f.name == "issue_tags":
        formatter = _array_column
    elif f.type in ("str", "str | None"):
        formatter = _text_column
    else:
        formatter = _scalar_column
    return operator.attrgetter(f.name), formatter


_ROW_FORMATS = tuple(_column_format(f) for f in fields(RunRecord))
_FIELDS = {f.name: f for f in fields(RunRecord)}
KEY_COLUMNS = ("run_id", "started_at", "idempotency_key", "source", "status")
_KEY_FORMATS = tuple(_column_format(_FIELDS[name]) for name in KEY_COLUMNS)


_KEY_POSITIONS = tuple(COLUMNS.index(name) for name in KEY_COLUMNS)
_CHUNK_ROWS = 500


def _lines(columns: Sequence[list[str]]) -> str:
    # The last line's newline joined in, not appended: no second copy of the chunk.
    return "\n".join(chain(map("\t".join, zip(*columns, strict=True)), ("",)))


def _columns(records: Sequence[RunRecord], formats: Sequence[tuple[Any, Any]]) -> list[list[str]]:
    return [formatter(list(map(get, records))) for get, formatter in formats]


def _chunks(records: Sequence[RunRecord]) -> Iterator[Sequence[RunRecord]]:
    for offset in range(0, len(records), _CHUNK_ROWS):
        yield records[offset : offset + _CHUNK_ROWS]


def _copy_chunks(
    records: Sequence[RunRecord], key_columns: Sequence[list[list[str]]] = ()
) -> Iterator[str]:
    """The batch as COPY text, formatted lazily chunk by chunk (see `_copy`). `key_columns`,
    the chunks' key columns as `_key_chunks` formatted them, are reused, not formatted again."""
    known: dict[int, list[str]] = {}
    for index, chunk in enumerate(_chunks(records)):
        if key_columns:
            known = dict(zip(_KEY_POSITIONS, key_columns[index], strict=True))
        columns = [
            known[position] if position in known else formatter(list(map(get, chunk)))
            for position, (get, formatter) in enumerate(_ROW_FORMATS)
        ]
        yield _lines(columns)


_STAGE_TABLE = "_eval_runs_incoming"
_CREATE_STAGE = (
    f"create temp table if not exists {_STAGE_TABLE}"
    " (like raw.eval_runs including defaults) on commit delete rows"
)
_COPY_KEYS = f"copy raw.eval_run_keys ({', '.join(KEY_COLUMNS)}) from stdin"
_COPY_LOG = f"copy raw.eval_runs ({', '.join(COLUMNS)}) from stdin"
_COPY_STAGE = f"copy {_STAGE_TABLE} ({', '.join(COLUMNS)}) from stdin"
# The keys table arbitrates: a row goes into the log only if its key row went in (a new run id,
# and no live settled row of its key), so both tables change together or not at all.
_MOVE_STAGE = f"""
with claimed as (
    insert into raw.eval_run_keys ({", ".join(KEY_COLUMNS)})
    select {", ".join(KEY_COLUMNS)} from {_STAGE_TABLE}
    on conflict do nothing
    returning run_id
)
insert into raw.eval_runs ({", ".join(COLUMNS)})
select distinct on (run_id) {", ".join(COLUMNS)} from {_STAGE_TABLE}
where run_id in (select run_id from claimed)
"""
_EMPTY_STAGE = f"truncate {_STAGE_TABLE}"
# The connections on which the stage table exists.
_staged: weakref.WeakSet = weakref.WeakSet()


def _key_chunks(records: Sequence[RunRecord], kept: list[list[list[str]]]) -> Iterator[str]:
    """The batch's rows of raw.eval_run_keys as COPY text; each chunk's columns are appended
    to `kept` for the rows' COPY (`_copy_chunks`)."""
    for chunk in _chunks(records):
        columns = _columns(chunk, _KEY_FORMATS)
        kept.append(columns)
        yield _lines(columns)


def write_runs(conn: psycopg.Connection, records: Sequence[RunRecord]) -> int:
    """Insert records on a psycopg 3 connection in one transaction; returns rows new to the log.

    Rows whose run_id exists, or whose key already settled, are skipped, so a batch can be
    written any number of times. The caller owns the connection; this commits (on an autocommit
    connection, or one outside a transaction; inside the caller's transaction it is a savepoint).

    raw.eval_runs is partitioned by month, and Postgres cannot hold a unique index across
    partitions, so uniqueness lives in raw.eval_run_keys (one narrow row per run: run id
    unique, one live settled row per key), written in the same transaction (docs/run-log.md).

    Fast path: COPY the key rows, then the rows, inside a savepoint. A batch that collides with
    a stored row (a replay, a spool flush, a race) fails the key COPY on a unique violation
    (usually at its first row, so cheaply) and takes the idempotent path: COPY into a session
    temp table, then one statement that inserts the keys `on conflict do nothing` and the rows
    whose keys went in. Both end with the same rows stored. A role under row-level security
    (the web role, migration 0011) is refused COPY outright and takes the second path too,
    where its policies check every row. A row in a month with no partition yet makes one
    (`create_partitions`) and the batch is written again.

    A batch of PARALLEL_MIN_ROWS or more on a connection with no transaction open is split over
    WRITE_CONNECTIONS connections (`write_runs_parallel`; the others are opened beside `conn`
    on first use and kept with it).
    """
    if not records:
        return 0
    if (
        WRITE_CONNECTIONS > 1
        and len(records) >= PARALLEL_MIN_ROWS
        and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    ):
        return write_runs_parallel([conn, *_siblings(conn)], records)
    return _write_batch(conn, records)


def _write_batch(conn: psycopg.Connection, records: Sequence[RunRecord]) -> int:
    if not _all_finite(records):
        records = [finite(record) for record in records]
    try:
        return _write_once(conn, records)
    except _UNSTORABLE_ERRORS:
        repaired = [storable(record) for record in records]
        if all(new is old for new, old in zip(repaired, records, strict=True)):
            raise
        return _write_once(conn, repaired)


def write_runs_parallel(conns: Sequence[psycopg.Connection], records: Sequence[RunRecord]) -> int:
    """One batch split over several connections, one thread each; returns rows new to the log.

    Records are dealt to connections by idempotency key, so every row of one key goes through
    one connection and two connections never wait on each other's uncommitted key rows (no
    deadlock between shards). Each shard is its own transaction: a failure leaves the other
    shards committed, and writing the whole batch again (the replay path) adds only what is
    missing, exactly as after a crash of `write_runs`.
    """
    from concurrent.futures import ThreadPoolExecutor

    shards: list[list[RunRecord]] = [[] for _ in conns]
    for record in records:
        shards[hash(record.idempotency_key) % len(conns)].append(record)
    with ThreadPoolExecutor(len(conns), thread_name_prefix="runlog-writer") as pool:
        futures = [
            pool.submit(_write_batch, conn, shard)
            for conn, shard in zip(conns, shards, strict=True)
            if shard
        ]
        return sum(future.result() for future in futures)


WRITE_CONNECTIONS = min(4, os.cpu_count() or 1)
"""Connections a large batch is split over: one per core, up to 4. Each connection's backend
parses and indexes its shard on a core of its own; past the cores they only queue (on 2 cores
2 beat 4 on the quiet machine, docs/benchmarks.md). Each process keeps WRITE_CONNECTIONS - 1
extra connections open per connection that wrote such a batch."""
PARALLEL_MIN_ROWS = 4000
"""Below this a batch goes through one connection: splitting costs more than it saves."""
_sibling_conns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _siblings(conn: psycopg.Connection) -> list[psycopg.Connection]:
    """WRITE_CONNECTIONS - 1 autocommit connections beside `conn`, as the same user to the same
    database, opened once and closed when `conn` is collected."""
    kept = [
        sibling
        for sibling in _sibling_conns.get(conn, [])
        if not sibling.closed and not sibling.broken
    ]
    while len(kept) < WRITE_CONNECTIONS - 1:
        kept.append(psycopg.connect(conninfo_of(conn), autocommit=True))
    _sibling_conns[conn] = kept
    return kept


# A NUL or an unpaired surrogate: psycopg cannot encode it, or Postgres refuses it.
_UNSTORABLE_ERRORS = (
    UnicodeEncodeError,
    psycopg.errors.CharacterNotInRepertoire,
    psycopg.errors.UntranslatableCharacter,
)


def _write_once(conn: psycopg.Connection, records: Sequence[RunRecord]) -> int:
    try:
        return _write(conn, records)
    except psycopg.errors.UndefinedTable:
        # The caller rolled back the transaction that created the stage table: make it again.
        _staged.discard(conn)
        return _write(conn, records)
    except psycopg.errors.CheckViolation as exc:
        if not _no_partition(exc):
            raise
        create_partitions(conn, [record.started_at for record in records])
        return _write(conn, records)


def _no_partition(exc: psycopg.errors.CheckViolation) -> bool:
    return (exc.diag.message_primary or "").startswith("no partition of relation")


def _copy(cur, statement: str, chunks: Iterable[str]) -> None:
    from psycopg.copy import QueuedLibpqWriter

    # Formatting, sending and the server's parsing overlap: this thread formats chunk i+1 while
    # the writer thread sends chunk i (libpq releases the GIL) and the server ingests it.
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for chunk in chunks:
            copy.write(chunk)


def _write(conn: psycopg.Connection, records: Sequence[RunRecord]) -> int:
    try:
        with conn.transaction(), conn.cursor() as cur:
            try:
                with conn.transaction():
                    key_columns: list[list[list[str]]] = []
                    _copy(cur, _COPY_KEYS, _key_chunks(records, key_columns))
                    _copy(cur, _COPY_LOG, _copy_chunks(records, key_columns))
                return len(records)
            except (psycopg.errors.UniqueViolation, psycopg.errors.FeatureNotSupported):
                pass  # a collision, or COPY FROM refused under row-level security
            if conn not in _staged:
                cur.execute(_CREATE_STAGE)
                _staged.add(conn)
            _copy(cur, _COPY_STAGE, _copy_chunks(records))
            cur.execute(_MOVE_STAGE)
            moved = cur.rowcount
            cur.execute(_EMPTY_STAGE)  # inside a caller's transaction, commit comes later
            return moved
    except psycopg.errors.UndefinedTable:
        raise
    except BaseException:
        _staged.discard(conn)  # a rolled-back transaction may have taken the stage table
        raise


# `on conflict`, not `where not exists`: on a key table the planner believes empty, an
# anti-join re-scans the rows this very statement inserts (quadratic; 10M rows ran > 20 min).
_ADD_MISSING_KEYS = f"""
insert into raw.eval_run_keys ({", ".join(KEY_COLUMNS)}, superseded_at)
select {", ".join(KEY_COLUMNS)}, superseded_at from raw.eval_runs
on conflict do nothing
"""


def add_missing_keys(conn: psycopg.Connection) -> int:
    """Key rows for runs stored without them by a bulk load in SQL (migration 0016, the dbt
    benchmark's fill); returns how many. `write_runs` writes both, so this finds none after it."""
    return conn.execute(_ADD_MISSING_KEYS).rowcount


# --- partitions: one per calendar month (UTC) of started_at --------------------------------

PARTITIONS_AHEAD = 3
"""Months past the current one that `create_partitions_ahead` makes (migrate, nightly)."""


def create_partitions(conn: psycopg.Connection, timestamps: Iterable[datetime]) -> list[str]:
    """Make the month partitions of raw.eval_runs that `timestamps` fall into and that do not
    exist yet; returns the names made (`eval_runs_y2026m11`). The SQL function of migration
    0016 does it as the table's owner, so any writer may (a role that does not own the table,
    such as the web role, only for months from 2000 to a month ahead)."""
    from psycopg.rows import tuple_row

    # In a transaction of its own unless the caller's is open; tuples whatever the connection's
    # row factory (the web pool's gives dicts).
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "select raw.create_eval_runs_partitions(%s::timestamptz[])", (list(timestamps),)
        )
        return [row[0] for row in cur.fetchall()]


def create_partitions_ahead(conn: psycopg.Connection, now: datetime | None = None) -> list[str]:
    """The current month's partition and the next PARTITIONS_AHEAD months' (a maintenance step
    run by every migrate and by the nightly retention pass)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return create_partitions(
        conn,
        [
            datetime(
                now.year + (now.month - 1 + i) // 12, (now.month - 1 + i) % 12 + 1, 1, tzinfo=UTC
            )
            for i in range(PARTITIONS_AHEAD + 1)
        ],
    )


# What Postgres text and jsonb cannot hold: NUL, and surrogate code points (not UTF-8 encodable).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_FLAG = "unstorable_text"
_TEXT_COLUMNS = tuple(f.name for f in fields(RunRecord) if f.type in ("str", "str | None"))


def _storable_text(text: str) -> str:
    # A surrogate pair split into two code points (surrogatepass decoding) is one character.
    joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _UNSTORABLE.sub("\ufffd", joined)


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return _storable_text(value) if _UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {_storable_value(key): _storable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_storable_value(item) for item in value)
    return value


def unstorable(value: Any) -> bool:
    """Whether text in `value` (a string, or any JSON-like value) is beyond Postgres."""
    return _storable_value(value) != value


def unstorable_columns(record: RunRecord) -> list[str]:
    """The columns of `record` holding text Postgres cannot store (NUL, unpaired surrogates)."""
    return [
        name
        for name in (*_TEXT_COLUMNS, *_JSON_COLUMNS, "issue_tags")
        if unstorable(getattr(record, name))
    ]


def storable(record: RunRecord) -> RunRecord:
    """`record` itself when Postgres can hold all of its text; else a copy with each NUL and
    unpaired surrogate replaced by U+FFFD and the affected columns listed in
    `attributes.unstorable_text` (the rule every writer of the run log shares)."""
    columns = unstorable_columns(record)
    if not columns:
        return record
    changes = {name: _storable_value(getattr(record, name)) for name in columns}
    attributes = changes.get("attributes", record.attributes)
    changes["attributes"] = {**attributes, UNSTORABLE_FLAG: columns}
    return replace(record, **changes)


NON_FINITE_FLAG = "non_finite"
_FLOAT_COLUMNS = ("score", "sample_weight", "latency_ms", "cost_usd")


def _is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _all_finite(records: Sequence[RunRecord]) -> bool:
    """Whether every float column and timing of `records` is finite, by one sum per column (a
    NaN or an infinity makes the sum non-finite): a fifth of the cost of `finite` on each
    record. False too when a sum overflows or meets a non-number; `finite` then decides."""
    timings = chain.from_iterable(record.timings.values() for record in records if record.timings)
    try:
        sums = [
            sum(filter(None, map(operator.attrgetter(name), records))) for name in _FLOAT_COLUMNS
        ]
        sums.append(sum(filter(None, timings)))
        return all(map(math.isfinite, sums))
    except (TypeError, OverflowError):
        return False


def finite(record: RunRecord) -> RunRecord:
    """`record` itself when its numbers are finite; else a copy with each NaN or ±Infinity
    (a float column, or a timing) stored as null and the columns listed in
    `attributes.non_finite`. Postgres would take them, and one NaN cost makes every sum over it
    NaN ($nan on the overview), an Infinity latency every percentile above it."""
    bad = [name for name in _FLOAT_COLUMNS if _is_non_finite(getattr(record, name))]
    timings = record.timings
    if timings and any(_is_non_finite(value) for value in timings.values()):
        timings = {key: None if _is_non_finite(value) else value for key, value in timings.items()}
        bad.append("timings")
    if not bad:
        return record
    changes: dict[str, Any] = {name: None for name in bad if name != "timings"}
    return replace(
        record, **changes, timings=timings, attributes={**record.attributes, NON_FINITE_FLAG: bad}
    )


# Each update marks the rows, then their key rows (which hold the one-live-settled-key rule).
_SUPERSEDE_IMPORTS = """
with superseded as (
    update raw.eval_runs set superseded_at = now()
    where source = 'import' and superseded_at is null and not (run_id = any(%(keep)s))
      and (attributes ->> 'imported_from' = %(file)s or idempotency_key = any(%(keys)s))
    returning run_id, superseded_at
)
update raw.eval_run_keys as k set superseded_at = superseded.superseded_at
from superseded where k.run_id = superseded.run_id
"""
# A row superseded by an earlier replacement and produced again by this one is live again.
_REVIVE_IMPORTS = """
with revived as (
    update raw.eval_runs set superseded_at = null
    where source = 'import' and superseded_at is not null and run_id = any(%(keep)s)
    returning run_id
)
update raw.eval_run_keys as k set superseded_at = null
from revived where k.run_id = revived.run_id
"""


def supersede_imports(
    conn: psycopg.Connection, file_name: str, keys: Sequence[str], keep: Sequence[uuid.UUID]
) -> int:
    """Mark superseded the live imported rows of `file_name` or of one of `keys`, except the
    run ids in `keep` (the replacing import's own rows); returns how many. Rows are never
    deleted: superseded ones stay in raw and staging leaves them out (docs/import-mapping.md).
    A superseded row no longer holds its key, so its replacement may settle under it."""
    params = {"file": file_name, "keys": list(keys), "keep": list(keep)}
    with conn.transaction():
        superseded = conn.execute(_SUPERSEDE_IMPORTS, params).rowcount
        conn.execute(_REVIVE_IMPORTS, params)
    return superseded


def settled_keys(conn: psycopg.Connection, keys: Iterable[str]) -> set[str]:
    """The keys among `keys` that already have a live ok / parse_error row."""
    keys = list(keys)
    if not keys:
        return set()
    rows = conn.execute(
        "select idempotency_key from raw.eval_run_keys where idempotency_key = any(%s)"
        " and status in ('ok', 'parse_error') and superseded_at is null",
        (keys,),
    ).fetchall()
    return {row[0] for row in rows}


_SETTLED_RUNS = """
select k.idempotency_key, {columns} from raw.eval_run_keys as k
join raw.eval_runs as r on r.run_id = k.run_id and r.started_at = k.started_at
where k.idempotency_key = any(%s) and k.status in ('ok', 'parse_error')
  and k.superseded_at is null
"""


def settled_runs(
    conn: psycopg.Connection, keys: Iterable[str], columns: Sequence[str] = ("run_id",)
) -> dict[str, tuple]:
    """Key → `columns` of its live settled row, for the keys among `keys` that have one.
    Found through raw.eval_run_keys (one index) and then each row by run id and time, so one
    probe in one partition per key, not one per partition."""
    keys = list(keys)
    if not keys:
        return {}
    selected = ", ".join(f"r.{column}" for column in columns)
    rows = conn.execute(_SETTLED_RUNS.format(columns=selected), (keys,)).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def fetch_run(conn: psycopg.Connection, run_id: uuid.UUID | str) -> dict[str, Any] | None:
    """One run record as a dict (column → value), or None."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from raw.eval_runs where run_id = %s", (str(run_id),)
        ).fetchone()


def record_from_row(row: Mapping[str, Any]) -> RunRecord:
    """A RunRecord from a fetched row (ingested_at dropped)."""
    return RunRecord(**{name: row[name] for name in COLUMNS if name in row})


# --- erasure (evals.lifecycle decides what goes; the run log says which rows that is) ----------

ERASURE_SET = "eval_runs_erasure"
"""A temp table (dropped at commit) of the run ids one erasure removes: the owners of the tables
that reference runs (reviews, the review queue, alerts) delete by it before the runs go."""

_LINEAGE = f"""
insert into {ERASURE_SET} (run_id, started_at)
with recursive lineage (run_id, started_at) as (
    select run_id, started_at from raw.eval_runs where {{roots}}
    union
    select child.run_id, child.started_at from raw.eval_runs as child
    inner join lineage on child.parent_run_id = lineage.run_id
)
select run_id, started_at from lineage
on conflict do nothing
"""


def collect_erasure(
    conn: psycopg.Connection,
    *,
    subject_id: str | None = None,
    source: str | None = None,
    started_before: datetime | None = None,
) -> None:
    """Make the erasure set the runs of one subject, or of one source started before a time,
    and every run descending from them (re-grades, replays and rejudges copy their texts).
    Call inside the transaction that deletes."""
    if subject_id is not None and source is None and started_before is None:
        roots, params = "subject_id = %s", (subject_id,)
    elif subject_id is None and source is not None and started_before is not None:
        roots, params = "source = %s and started_at < %s", (source, started_before)
    else:
        raise ValueError("erase either one subject, or one source before a time")
    conn.execute(
        f"create temp table if not exists {ERASURE_SET}"
        " (run_id uuid primary key, started_at timestamptz not null) on commit drop"
    )
    conn.execute(f"truncate {ERASURE_SET}")  # a retention pass erases source after source
    conn.execute(_LINEAGE.format(roots=roots), params)


def erasure_run_ids(conn: psycopg.Connection) -> set[uuid.UUID]:
    """The run ids in the erasure set (to find them in files outside the warehouse)."""
    return {row[0] for row in conn.execute(f"select run_id from {ERASURE_SET}")}


_PARTITIONS = """
select c.relname, pg_get_expr(c.relpartbound, c.oid)
from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'raw.eval_runs'::regclass
"""
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def delete_erasure_set(conn: psycopg.Connection) -> int:
    """Delete the runs of the erasure set and their key rows; rows referencing them must be
    gone first. A month whose every row is in the set (retention's usual case) goes as a
    partition drop, without a row-by-row delete or the vacuum after it; the drop holds an
    ACCESS EXCLUSIVE lock on raw.eval_runs until the caller commits."""
    dropped = 0
    for name, bound in conn.execute(_PARTITIONS).fetchall():
        start, end = _BOUNDS.search(bound).groups()
        erased = conn.execute(
            f"select count(*) from {ERASURE_SET} where started_at >= %s and started_at < %s",
            (start, end),
        ).fetchone()[0]
        if erased and erased == conn.execute(f"select count(*) from raw.{name}").fetchone()[0]:
            conn.execute(f"drop table raw.{name}")
            dropped += erased
    deleted = conn.execute(
        f"delete from raw.eval_runs as r using {ERASURE_SET} as e"
        " where r.run_id = e.run_id and r.started_at = e.started_at"
    ).rowcount
    # The rows deleted took their key rows along (migration 0016's trigger); a dropped month's
    # did not.
    conn.execute(
        f"delete from raw.eval_run_keys where run_id in (select run_id from {ERASURE_SET})"
    )
    return dropped + deleted
