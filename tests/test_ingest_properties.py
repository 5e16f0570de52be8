"""Property-based tests of the ingest boundaries: capture + spool replay, and `evalhouse import`.

Over arbitrary Unicode (NUL, unpaired surrogates, RTL, combining marks), huge and non-finite
numbers, absurd timestamps, wrong JSON shapes and truncated files: nothing raises; every record
is stored (verbatim where Postgres can hold its text) or set aside with where and why; the rest
always lands. `make test` runs a bounded number of examples; `-m fuzz` runs the long variants.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from evals.capture.spool import Spool, decode_record, encode_record
from evals.capture.writer import write_or_set_aside
from evals.importers import INT_MAX, PLAUSIBLE_SINCE, MappingError, import_file, load_mapping
from evals.runlog import UNSTORABLE_FLAG, RunRecord, _all_finite, finite, storable

FUZZ = settings(parent=settings.get_profile("fuzz"))
SPECIAL = [
    "\x00",
    "\ud83d",  # half an emoji
    "\ude00",
    "\ud83d\ude00",  # a pair split into two code points
    "\u202e",  # right-to-left override
    "\u200f",
    "e\u0301",  # a combining mark
    "مرحبا",
    "שלום",
    "😀",
    "\ufeff",
    "\\",
    "\\N",
    "\\u0000",
    "\t",
    "\n",
    "\r",
    '"',
    ",",
    "|",
]
TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=10).map("".join)
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([3e9, 1e20, -1, 0, 2**31 - 1, 2**31, 10**400]),
)
TIMESTAMP = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    NUMBER,
    TEXT,
    st.sampled_from(["9999-12-31", "1970-01-01T00:00:00Z", "0001-01-01", "2026-10-03 09:00"]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture
def conn(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def _stored(conn, column: str, values: list) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"select * from raw.eval_runs where {column} = any(%s)", (values,)
        ).fetchall()
    return {row[column]: row for row in rows}


# --- capture and spool replay -----------------------------------------------------------------


@st.composite
def captured(draw) -> RunRecord:
    run_id = uuid.uuid4()  # never drawn: examples share one database
    optional_number = st.none() | NUMBER
    return RunRecord(
        idempotency_key=f"{run_id}:{draw(TEXT)}",
        source="production",
        role="grader",
        model=draw(TEXT),
        started_at=draw(st.datetimes(timezones=st.just(UTC))),
        status=draw(st.sampled_from(["ok", "error", "parse_error", "timeout"])),
        run_id=run_id,
        stage=draw(st.none() | TEXT),
        subject_id=draw(st.none() | TEXT),
        submission=draw(st.none() | TEXT),
        output_text=draw(st.none() | TEXT),
        inputs=draw(st.dictionaries(TEXT, JSON, max_size=3)),
        messages=[{"role": "user", "content": draw(TEXT)}],
        attributes=draw(st.dictionaries(TEXT, JSON, max_size=3)),
        issue_tags=draw(st.lists(TEXT, max_size=3)),
        latency_ms=draw(optional_number),
        input_tokens=draw(st.none() | st.integers(min_value=-(2**40), max_value=2**40)),
        cost_usd=draw(optional_number),
        score=draw(optional_number),
        timings=draw(st.dictionaries(TEXT, st.none() | NUMBER | TEXT, max_size=2)),
    )


def _capture_and_replay(conn, directory: Path, batch: list[RunRecord]) -> None:
    spool = Spool(directory / uuid.uuid4().hex)
    spool.append(batch)
    result = spool.replay(lambda chunk: write_or_set_aside(conn, chunk, spool)[0])
    assert (result.rows, result.set_aside, spool.segments()) == (len(batch), [], [])
    set_aside = {
        uuid.UUID(json.loads(json.loads(line)["row"])["run_id"])
        for path in spool.rejected_files()
        for line in path.read_text().splitlines()
    }
    stored = _stored(conn, "run_id", [record.run_id for record in batch])
    assert set(stored) | set_aside == {record.run_id for record in batch}
    assert not set(stored) & set_aside
    for record in batch:
        if record.run_id not in stored:
            continue
        # The spool's JSON joins a surrogate pair split into two code points into one character.
        spooled = decode_record(encode_record(record))
        row, expected = stored[record.run_id], storable(spooled)
        for column in ("model", "stage", "subject_id", "submission", "output_text"):
            assert row[column] == getattr(expected, column)  # verbatim, or U+FFFD where it can't
        assert row["messages"] == expected.messages
        assert row["issue_tags"] == expected.issue_tags
        assert row["attributes"].get(UNSTORABLE_FLAG) == expected.attributes.get(UNSTORABLE_FLAG)


@settings(max_examples=25)  # each example is a warehouse round trip, often row by row
@given(batch=st.lists(captured(), min_size=1, max_size=5))
def test_every_captured_row_lands_or_is_set_aside_with_its_reason(conn, tmp_path, batch):
    _capture_and_replay(conn, tmp_path, batch)


@pytest.mark.fuzz
@FUZZ
@given(batch=st.lists(captured(), min_size=1, max_size=20))
def test_fuzz_every_captured_row_lands_or_is_set_aside(conn, tmp_path, batch):
    _capture_and_replay(conn, tmp_path, batch)


@given(batch=st.lists(captured(), max_size=5))
def test_a_batch_passes_the_writers_finite_check_only_if_finite_would_change_no_record(batch):
    assert not _all_finite(batch) or all(finite(record) is record for record in batch)


def _record_line(i: int) -> bytes:
    record = RunRecord(
        idempotency_key=f"spool-{uuid.uuid4()}",
        source="production",
        role="grader",
        model="m",
        started_at=datetime(2026, 10, 1, tzinfo=UTC),
        status="ok",
        item_id=f"valid-{i}",
    )
    return encode_record(record).encode() + b"\n"


GARBAGE = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=80).map(lambda cut: _record_line(0)[:cut]),
).map(lambda line: line.replace(b"\n", b" "))


def _replay_a_damaged_segment(conn, directory: Path, lines: list, torn: bytes) -> None:
    spool = Spool(directory / uuid.uuid4().hex)
    spool.append([])  # creates the segment
    path = spool.active_segment
    spool.seal()
    valid = [uuid.uuid4().hex for line in lines if line is None]
    content, index = b"", 0
    for line in lines:
        if line is None:
            content += _record_line(0).replace(b"valid-0", f"valid-{valid[index]}".encode())
            index += 1
        else:
            content += line + b"\n"
    path.write_bytes(content + torn.replace(b"\n", b" "))
    result = spool.replay(lambda chunk: write_or_set_aside(conn, chunk, spool)[0])
    bad = [line for line in lines if line is not None and line.strip()]
    assert (result.rows, len(result.set_aside), result.rejected) == (len(valid), len(bad), len(bad))
    assert all(where.startswith(f"{path.name}@") for where in result.set_aside)
    assert len(_stored(conn, "item_id", [f"valid-{v}" for v in valid])) == len(valid)
    assert not path.exists()


@given(lines=st.lists(st.none() | GARBAGE, max_size=8), torn=st.binary(max_size=30))
def test_a_damaged_spool_segment_sets_aside_each_bad_line_and_replays_the_rest(
    conn, tmp_path, lines, torn
):
    _replay_a_damaged_segment(conn, tmp_path, lines, torn)


@pytest.mark.fuzz
@FUZZ
@given(lines=st.lists(st.none() | GARBAGE, max_size=30), torn=st.binary(max_size=60))
def test_fuzz_a_damaged_spool_segment_replays_the_rest(conn, tmp_path, lines, torn):
    _replay_a_damaged_segment(conn, tmp_path, lines, torn)


# --- evalhouse import, each format ------------------------------------------------------------

FIELDS = {
    "item_id": "item",
    "model": "judge",
    "verdict": "says",
    "started_at": "at",
    "input_tokens": "tokens",
    "cost_usd": "cost",
    "latency_ms": "latency",
    "output_text": "text",
    "attributes.first_label": "labels.0",
}
VALUE = st.one_of(SCALAR, st.lists(TEXT, max_size=2), st.dictionaries(TEXT, TEXT, max_size=2))


@st.composite
def source_records(draw) -> list[dict]:
    prefix = uuid.uuid4().hex[:12]
    return [
        {
            "item": f"{prefix}-{index}",
            "judge": draw(st.one_of(TEXT, VALUE)),
            "says": draw(VALUE),
            "at": draw(st.none() | TIMESTAMP),
            "tokens": draw(st.none() | NUMBER),
            "cost": draw(st.none() | NUMBER),
            "latency": draw(st.none() | NUMBER),
            "text": draw(st.one_of(TEXT, VALUE)),
            "labels": draw(st.one_of(st.lists(TEXT, max_size=2), VALUE)),
        }
        for index in range(draw(st.integers(min_value=1, max_value=5)))
    ]


def _write_source(path: Path, kind: str, records: list[dict]) -> None:
    if kind == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    elif kind == "json":
        path.write_text(json.dumps({"results": records}))
    else:
        # surrogatepass: an unpaired surrogate reaches the file as bytes that are not UTF-8
        with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)


def _import_anything(conn, directory: Path, kind: str, records: list[dict], cut: float) -> None:
    mapping_path = directory / f"{uuid.uuid4().hex}.yaml"
    mapping_path.write_text(
        json.dumps(
            {
                "format": kind,
                "records": "results" if kind == "json" else None,
                "suite": "pairwise-qa",
                "vocabulary": {"verdicts": ["1", "2", "tie"], "passing": ["1"]},
                "fields": FIELDS,
            }
        )
    )
    source = directory / f"{uuid.uuid4().hex}.{kind}"
    _write_source(source, kind, records)
    truncated = cut < 1
    if truncated:
        data = source.read_bytes()
        source.write_bytes(data[: int(len(data) * cut)])
    try:
        report = import_file(conn, source, load_mapping(mapping_path), allow_missing=list(FIELDS))
    except MappingError as exc:  # a JSON document cut short is unreadable as a whole
        assert kind == "json" and truncated and source.name in str(exc)
        return
    assert report.read == report.imported + report.already_present + len(report.issues)
    stored = _stored(conn, "item_id", [record["item"] for record in records])
    if not truncated:
        assert report.read == len(records) and report.already_present == 0
        assert len(stored) + len(report.issues) == len(records)
    window_end = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    for row in stored.values():
        assert row["input_tokens"] is None or 0 <= row["input_tokens"] <= INT_MAX
        for column in ("cost_usd", "latency_ms"):
            assert row[column] is None or (math.isfinite(row[column]) and row[column] >= 0)
        assert PLAUSIBLE_SINCE <= row["started_at"] < window_end
        assert UNSTORABLE_FLAG not in row["attributes"]
    if kind != "csv" and not truncated:
        for record in records:
            text = record["text"]
            if record["item"] in stored and isinstance(text, str) and text.strip():
                # as the file spells it: JSON joins a surrogate pair split in two code points
                spelled = json.loads(json.dumps(text)).strip()
                assert stored[record["item"]]["output_text"] == spelled  # verbatim


CUT = st.one_of(st.just(1.0), st.floats(min_value=0.0, max_value=0.999))


@pytest.mark.parametrize("kind", ["jsonl", "csv", "json"])
@given(records=source_records(), cut=CUT)
def test_an_import_stores_or_reports_every_record_of_any_file(conn, tmp_path, kind, records, cut):
    _import_anything(conn, tmp_path, kind, records, cut)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", ["jsonl", "csv", "json"])
@FUZZ
@given(records=source_records(), cut=CUT)
def test_fuzz_an_import_stores_or_reports_every_record(conn, tmp_path, kind, records, cut):
    _import_anything(conn, tmp_path, kind, records, cut)
