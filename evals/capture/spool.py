"""The capture spool: an append-only, fsync'd local log of rows the warehouse has not taken yet.

When the warehouse is unreachable, the capture writer appends each batch here before anything
else may happen to it; a batch is acknowledged to the app (``flush()`` returns) only after its
lines are on disk. Segments are replayed into raw.eval_runs when the warehouse returns and are
deleted only after every row in them is committed. Because every row carries its run_id from the
moment it was captured and the run log is written with ``ON CONFLICT DO NOTHING``, replaying a
segment twice (a crash between commit and delete, two replayers) adds nothing.

Layout: ``<dir>/capture-<utc>-<pid>-<rand>.jsonl``, one JSON row per line. A live writer holds an
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
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.atomic import fsync_dir, replace_file
from evals.runlog import RunRecord

log = logging.getLogger(__name__)

SEGMENT_GLOB = "capture-*.jsonl"
REJECTED_PREFIX = "rejected-"
_UUID_FIELDS = ("run_id", "parent_run_id")


def encode_record(record: RunRecord) -> str:
    """One spool line (no newline): the record's columns as JSON, uuids and times as strings."""
    return json.dumps(record.to_dict(), ensure_ascii=False, default=str, separators=(",", ":"))


def decode_record(line: str) -> RunRecord:
    data: dict[str, Any] = json.loads(line)
    for name in _UUID_FIELDS:
        if data.get(name) is not None:
            data[name] = uuid.UUID(data[name])
    data["started_at"] = datetime.fromisoformat(data["started_at"])
    return RunRecord(**data)


@dataclass
class ReplayResult:
    segments: int = 0
    rows: int = 0
    inserted: int = 0
    skipped_busy: int = 0
    rejected: int = 0


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
        chunk_rows: int = 2000,
    ) -> ReplayResult:
        """Write every replayable segment through `write` (one transaction per chunk).

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
                if bad_lines:
                    self._reject(bad_lines, f"unreadable line in {path.name}")
                    result.rejected += len(bad_lines)
                path.unlink()
                fsync_dir(self.directory)
                result.segments += 1
                result.rows += len(records)
        return result

    @staticmethod
    def _read(path: Path, fd: int) -> tuple[list[RunRecord], list[str]]:
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        if lines and lines[-1]:
            # A torn tail: the batch was never fsync'd, so it was never acknowledged.
            log.warning(
                "capture spool %s: dropping a torn last line (%d bytes)", path.name, len(lines[-1])
            )
        records: list[RunRecord] = []
        bad: list[str] = []
        for raw in lines[:-1]:
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace")
            try:
                records.append(decode_record(text))
            except (ValueError, TypeError, KeyError) as exc:
                log.error("capture spool %s: unreadable row (%s)", path.name, type(exc).__name__)
                bad.append(text)
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

    def rejected_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{REJECTED_PREFIX}*.jsonl"))

    def erase(self, matches: Callable[[RunRecord], bool], mentions: Sequence[str]) -> EraseResult:
        """Rewrite every segment and rejected file without the rows `matches` selects, or a
        row that descends from one (its parent_run_id); an unreadable line goes when it
        contains one of `mentions`. A segment a live writer holds is left alone and counted."""
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
        return result


@dataclass
class EraseResult:
    rows: int = 0
    skipped_busy: int = 0


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


def iter_segment_records(path: Path) -> Iterator[RunRecord]:
    """The complete rows of one segment (for inspection and tests)."""
    for raw in path.read_text(encoding="utf-8").split("\n")[:-1]:
        if raw.strip():
            yield decode_record(raw)
