"""The capture spool: an append-only, fsync'd local log of rows the warehouse has not taken yet.

When the warehouse is unreachable, the capture writer appends each batch here before anything
else may happen to it; a batch is acknowledged to the app (``flush()`` returns) only after its
lines are on disk. Segments are replayed into raw.eval_runs when the warehouse returns and are
deleted only after every row in them is committed. Because every row carries its run_id from the
moment it was captured and the run log is written with ``ON CONFLICT DO NOTHING``, replaying a
segment twice (a crash between commit and delete, two replayers) adds nothing.

Layout: ``<dir>/capture-<utc>-<pid>-<rand>.jsonl``, one JSON row per line, ASCII-escaped so any
Python text, even an unpaired surrogate, survives the disk verbatim. A line that is not such a
row (corruption, a hand edit) is set aside in ``rejected-<day>.jsonl`` with its segment, byte
offset and reason, and the rest of the segment replays. A live writer holds an
exclusive ``flock`` on the segment it appends to, so replayers (another process, or
``evalhouse capture flush``) skip it; the kernel drops the lock when its process dies, even on
``kill -9``, which makes the segment of a crashed app replayable at once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.atomic import fsync_dir, replace_file
from evals.reviews import Review
from evals.runlog import COLUMNS, RunRecord

log = logging.getLogger(__name__)

SEGMENT_GLOB = "capture-*.jsonl"
REVIEWS_GLOB = "reviews-*.jsonl"
REJECTED_PREFIX = "rejected-"
_UUID_FIELDS = ("run_id", "parent_run_id")


def encode_record(record: RunRecord) -> str:
    """One spool line (no newline): the record's columns as JSON, uuids and times as strings."""
    return json.dumps(record.to_dict(), default=str, separators=(",", ":"))


class SpoolLineError(ValueError):
    """A spool line that is not a run-log record; the message says why."""


_HINTS = typing.get_type_hints(RunRecord)
_REQUIRED = frozenset(
    spec.name for spec in fields(RunRecord) if spec.default is spec.default_factory is MISSING
)
# How each Python type of a RunRecord field is spelled in a spool line.
_AS_JSON: dict[Any, type | tuple[type, ...]] = {
    str: str,
    int: int,
    float: (int, float),
    bool: bool,
    dict: dict,
    list: list,
    uuid.UUID: str,
    datetime: str,
}


def _fits(hint: Any, value: Any) -> bool:
    """Whether `value` spells a field of type `hint` in a spool line (list[str] item by item)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None):
            if value is None:
                return True
            continue
        base = typing.get_origin(option) or option
        if isinstance(value, bool) and base is not bool:
            continue
        if isinstance(value, _AS_JSON.get(base, object)) and (
            typing.get_args(option) != (str,) or all(isinstance(item, str) for item in value)
        ):
            return True
    return False


def decode_record(line: str) -> RunRecord:
    """The record of one spool line; SpoolLineError when the line is anything else."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise SpoolLineError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SpoolLineError(f"a JSON {type(data).__name__}, not a record")
    if unknown := sorted(data.keys() - set(COLUMNS)):
        raise SpoolLineError(f"unknown columns {', '.join(map(str, unknown))[:200]}")
    if missing := sorted(_REQUIRED - data.keys()):
        raise SpoolLineError(f"missing columns {', '.join(missing)}")
    if wrong := [name for name, value in data.items() if not _fits(_HINTS[name], value)]:
        raise SpoolLineError(f"wrong type for {', '.join(wrong)}")
    try:
        for name in _UUID_FIELDS:
            if data.get(name) is not None:
                data[name] = uuid.UUID(data[name])
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        return RunRecord(**data)
    except ValueError as exc:
        raise SpoolLineError(str(exc)[:200]) from None


@dataclass
class ReplayResult:
    segments: int = 0
    rows: int = 0
    inserted: int = 0
    skipped_busy: int = 0
    rejected: int = 0
    set_aside: list[str] = field(default_factory=list)  # "segment@offset: reason", per line


class Spool:
    """Append-only JSONL segments under one directory (see the module docstring)."""

    def __init__(self, directory: Path | str, segment_max_bytes: int = 16 * 1024 * 1024):
        self.directory = Path(directory)
        self.segment_max_bytes = segment_max_bytes
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0

    # -- writing -----------------------------------------------------------------------------

    def append(self, records: Sequence[RunRecord]) -> Path:
        """Append records to the active segment and fsync; returns the segment's path."""
        payload = "".join(encode_record(record) + "\n" for record in records).encode()
        if self._fd is None or self._size + len(payload) > self.segment_max_bytes:
            self.seal()
            self._open_segment()
        assert self._fd is not None and self._path is not None
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self._size += len(payload)
        return self._path

    def _open_segment(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"capture-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fsync_dir(self.directory)  # the new name itself must survive a crash
        self._fd, self._path, self._size = fd, path, 0

    def seal(self) -> None:
        """Close the active segment (releasing its lock) so it can be replayed."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._path, self._size = None, None, 0

    @property
    def active_segment(self) -> Path | None:
        return self._path

    # -- reading -----------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(SEGMENT_GLOB))

    def pending_rows(self) -> int:
        """Complete lines across all segments (an estimate of rows not yet in the warehouse)."""
        total = 0
        for path in self.segments():
            try:
                total += path.read_bytes().count(b"\n")
            except FileNotFoundError:
                continue
        return total

    def replay(
        self,
        write: Callable[[Sequence[RunRecord]], int],
        chunk_rows: int = 20_000,
    ) -> ReplayResult:
        """Write every replayable segment through `write` (one transaction per chunk; chunks
        large enough for `evals.runlog.write_runs` to split over its parallel connections).

        A segment is deleted only after all of its chunks were written; an exception from
        `write` (the warehouse went away again) propagates and leaves the segment in place.
        """
        if self._fd is not None:
            self.seal()
        result = ReplayResult()
        for path in self.segments():
            with _SegmentClaim(path) as fd:
                if fd is None:
                    result.skipped_busy += 1
                    continue
                records, bad_lines = self._read(path, fd)
                for start in range(0, len(records), chunk_rows):
                    result.inserted += write(records[start : start + chunk_rows])
                for offset, text, reason in bad_lines:
                    where = f"{path.name}@{offset}: {reason}"
                    self._reject([text], f"not a record: {where}")
                    result.set_aside.append(where)
                result.rejected += len(bad_lines)
                path.unlink()
                fsync_dir(self.directory)
                result.segments += 1
                result.rows += len(records)
        return result

    @staticmethod
    def _read(path: Path, fd: int) -> tuple[list[RunRecord], list[tuple[int, str, str]]]:
        """The segment's records, and its lines that are none: (byte offset, text, reason)."""
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        if lines and lines[-1]:
            # A torn tail: the batch was never fsync'd, so it was never acknowledged.
            log.warning(
                "capture spool %s: dropping a torn last line (%d bytes)", path.name, len(lines[-1])
            )
        records: list[RunRecord] = []
        bad: list[tuple[int, str, str]] = []
        offset = 0
        for raw in lines[:-1]:
            start, offset = offset, offset + len(raw) + 1
            if not raw.strip():
                continue
            try:
                records.append(decode_record(raw.decode("utf-8")))
            except (SpoolLineError, UnicodeDecodeError) as exc:
                reason = str(exc) if isinstance(exc, SpoolLineError) else "not UTF-8"
                log.error("capture spool %s@%d: set aside, %s", path.name, start, reason)
                bad.append((start, raw.decode("utf-8", "backslashreplace"), reason))
        return records, bad

    def reject(self, records: Sequence[RunRecord], reason: str) -> Path:
        """Keep rows the warehouse refused (bad data, not an outage) beside the spool, never replayed."""
        return self._reject([encode_record(record) for record in records], reason)

    def _reject(self, lines: Sequence[str], reason: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{REJECTED_PREFIX}{time.strftime('%Y%m%d', time.gmtime())}.jsonl"
        entry = "".join(json.dumps({"reason": reason, "row": line}) + "\n" for line in lines)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(entry)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    # -- reviews waiting for their runs -------------------------------------------------------

    def hold_reviews(self, reviews: Sequence[Review]) -> Path | None:
        """Keep human reviews whose runs are still in the spool (raw.human_reviews references
        the run log) in a file of their own, fsync'd; `replay_reviews` stores them later."""
        if not reviews:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"reviews-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(_encode_review(review) + "\n" for review in reviews)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.rename(path)
        fsync_dir(self.directory)
        return path

    def review_files(self) -> list[Path]:
        return sorted(self.directory.glob(REVIEWS_GLOB)) if self.directory.is_dir() else []

    def replay_reviews(
        self, store: Callable[[list[Review]], tuple[int, list[Review]]]
    ) -> tuple[int, int]:
        """Offer every held review to `store` (which stores those whose run exists and returns
        the rest); the rest stay held. Returns (stored, still waiting)."""
        stored = waiting = 0
        for path in self.review_files():
            with _SegmentClaim(path) as fd:
                if fd is None:
                    continue
                with os.fdopen(os.dup(fd), "r", encoding="utf-8") as handle:
                    held = [_decode_review(line) for line in handle if line.strip()]
                changed, rest = store(held)
                stored += changed
                waiting += len(rest)
                if len(rest) < len(held):
                    self.hold_reviews(rest)
                    path.unlink()
                    fsync_dir(self.directory)
        return stored, waiting

    def rejected_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{REJECTED_PREFIX}*.jsonl"))

    def erase(self, matches: Callable[[RunRecord], bool], mentions: Sequence[str]) -> EraseResult:
        """Rewrite every segment, rejected file and held-reviews file without the rows `matches`
        selects, a row that descends from one (its parent_run_id), or a review of either; an
        unreadable line goes when it contains one of `mentions`. A segment a live writer holds
        is left alone and counted."""
        result = EraseResult()
        erased: set[uuid.UUID] = set()

        def doomed(text: str) -> bool:
            try:
                record = decode_record(text)
            except (ValueError, TypeError, KeyError, AttributeError):
                return any(needle in text for needle in mentions)
            if matches(record) or record.parent_run_id in erased:
                erased.add(record.run_id)
                return True
            return False

        for path in self.segments():
            with _SegmentClaim(path) as fd:
                if fd is None:
                    result.skipped_busy += int(path.exists())
                    continue
                result.rows += _rewrite_lines(path, doomed)
        for path in self.rejected_files():
            result.rows += _rewrite_lines(path, lambda line: doomed(_rejected_row(line)))
        for path in self.review_files():  # reviews held for runs still spooled, or erased above
            result.rows += _rewrite_lines(path, lambda line: _review_of(line, erased, mentions))
        return result


@dataclass
class EraseResult:
    rows: int = 0
    skipped_busy: int = 0


def _review_of(line: str, erased: set[uuid.UUID], mentions: Sequence[str]) -> bool:
    """Whether a held review belongs to an erased run (or, unreadable, mentions the subject)."""
    try:
        return _decode_review(line).run_id in erased
    except (ValueError, TypeError, KeyError):
        return any(needle in line for needle in mentions)


def _rejected_row(line: str) -> str:
    """The row text of one rejected-file line ({"reason", "row"}), else the line itself."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    row = entry.get("row") if isinstance(entry, dict) else None
    return row if isinstance(row, str) else line


def _rewrite_lines(path: Path, doomed: Callable[[str], bool]) -> int:
    """Drop the complete lines `doomed` selects from `path` (atomically); returns how many."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.split(b"\n")
    kept = [raw for raw in lines[:-1] if not doomed(raw.decode("utf-8", errors="replace"))]
    removed = len(lines) - 1 - len(kept)
    if removed:
        replace_file(path, b"".join(line + b"\n" for line in kept))
    return removed


class _SegmentClaim:
    """Context manager: an fd holding a non-blocking exclusive lock on a segment, or None."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # another replayer finished it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            # Replayed and unlinked, or rewritten by `erase`, between our open and our lock:
            # this fd holds what the path no longer is.
            os.close(fd)
            return None
        self.fd = fd
        return fd

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _encode_review(review: Review) -> str:
    reviewed_at = review.reviewed_at and review.reviewed_at.isoformat()
    return json.dumps({**asdict(review), "run_id": str(review.run_id), "reviewed_at": reviewed_at})


def _decode_review(line: str) -> Review:
    data = json.loads(line)
    return Review(
        **{
            **data,
            "run_id": uuid.UUID(data["run_id"]),
            "issue_tags": tuple(data["issue_tags"]),
            "reviewed_at": data["reviewed_at"] and datetime.fromisoformat(data["reviewed_at"]),
        }
    )


def iter_segment_records(path: Path) -> Iterator[RunRecord]:
    """The complete rows of one segment (for inspection and tests)."""
    for raw in path.read_text(encoding="utf-8").split("\n")[:-1]:
        if raw.strip():
            yield decode_record(raw)
