"""Human reviews: a stratified queue out, validated labels in (raw.review_queue, raw.human_reviews).

Humans are the ground truth the judges are measured against, so their labels are checked as
strictly as golden sets: a verdict outside the suite's vocabulary, an issue tag outside its
taxonomy or a run id the warehouse does not know is reported with its line and not stored.
Several reviewers may label one run (one row per run × reviewer); the consensus label is the
majority, derived downstream in dbt. A reviewer relabelling a run replaces their own label only
when the new one is more recent, so importing the same file twice changes nothing.

The queue samples runs nobody reviewed yet, stratified by stage (each stage gets its share,
however skewed the traffic), in a seeded random order so a re-run picks the same runs.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.atomic import replace_file
from evals.runlog import unstorable

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config

QUEUE_REASON = "review_queue"
QUEUE_COLUMNS = (
    "run_id",
    "stage",
    "suite",
    "item_id",
    "model",
    "prompt_version",
    "started_at",
    "rubric",
    "submission",
    "output_text",
    "model_verdict",
    "model_issue_tags",
    "reviewer",
    "verdict",
    "score",
    "issue_tags",
    "notes",
)
REVIEW_FIELDS = ("run_id", "reviewer", "verdict", "score", "issue_tags", "notes", "reviewed_at")
_REVIEW_NAMESPACE = uuid.UUID("0b6f2a3e-8d4c-4f1b-9e57-2c1d7a9e4b10")
NO_STAGE = "(none)"


# --- vocabulary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """What a verdict and an issue tag may be for one suite."""

    suite: str
    verdicts: tuple[str, ...]
    passing: tuple[str, ...]
    issue_tags: tuple[str, ...]

    def verdict(self, raw: Any) -> str | None:
        """The vocabulary verdict `raw` names (exact, then case-insensitive), or None."""
        if raw is None:
            return None
        text = cell_text(raw)
        if text in self.verdicts:
            return text
        return {v.lower(): v for v in self.verdicts}.get(text.lower())

    def tags(self, raw: Iterable[str]) -> tuple[list[str], list[str]]:
        """(known tags in taxonomy spelling, unknown tags)."""
        taxonomy = {tag.lower(): tag for tag in self.issue_tags}
        known, unknown = [], []
        for tag in raw:
            (known if tag.lower() in taxonomy else unknown).append(taxonomy.get(tag.lower(), tag))
        return list(dict.fromkeys(known)), unknown


def cell_text(value: Any) -> str:
    """A cell as text the way people mean it: True → "true", 1.0 → "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def suite_vocabulary(
    conn: psycopg.Connection, config: Config | None, suite: str
) -> Vocabulary | None:
    """The suite's vocabulary: its latest version loaded in raw.golden_suites, else the config."""
    row = conn.execute(
        "select verdicts, passing_verdicts, issue_tags from raw.golden_suites where suite = %s"
        " order by loaded_at desc limit 1",
        (suite,),
    ).fetchone()
    if row is not None:
        return Vocabulary(suite, tuple(row[0]), tuple(row[1]), tuple(row[2]))
    if config is not None and suite in config.suites:
        from evals.golden import GoldenSetError, suites_from_config

        try:
            loaded = suites_from_config(config)[suite]
        except (GoldenSetError, KeyError):
            return None
        return Vocabulary(suite, loaded.verdicts, loaded.passing_verdicts, loaded.issue_tags)
    return None


# --- writing reviews ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    run_id: uuid.UUID
    reviewer: str
    verdict: str | None
    score: float | None = None
    issue_tags: tuple[str, ...] = ()
    notes: str | None = None
    reviewed_at: datetime | None = None
    source: str = "cli"


_UPSERT_REVIEW = """
insert into raw.human_reviews
    (review_id, run_id, reviewer, verdict, score, issue_tags, notes, source, reviewed_at)
values (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
on conflict (run_id, reviewer) do update set
    verdict = excluded.verdict, score = excluded.score, issue_tags = excluded.issue_tags,
    notes = excluded.notes, source = excluded.source, reviewed_at = excluded.reviewed_at,
    ingested_at = now()
where excluded.reviewed_at > raw.human_reviews.reviewed_at
  and (excluded.verdict, excluded.score, excluded.issue_tags, excluded.notes)
      is distinct from (raw.human_reviews.verdict, raw.human_reviews.score,
                        raw.human_reviews.issue_tags, raw.human_reviews.notes)
"""


def write_reviews(conn: psycopg.Connection, reviews: Sequence[Review]) -> int:
    """Insert one label per run × reviewer, or replace the reviewer's label when the new one is
    newer and different; returns rows changed (0 when the same labels are imported again)."""
    if not reviews:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            _UPSERT_REVIEW,
            [
                (
                    uuid.uuid5(_REVIEW_NAMESPACE, f"{r.run_id}:{r.reviewer}"),
                    r.run_id,
                    r.reviewer,
                    r.verdict,
                    r.score,
                    list(r.issue_tags),
                    r.notes,
                    r.source,
                    r.reviewed_at,
                )
                for r in reviews
            ],
        )
        return cur.rowcount


def write_reviews_of_present_runs(
    conn: psycopg.Connection, reviews: Sequence[Review]
) -> tuple[int, list[Review]]:
    """Store the reviews whose run is in the run log; returns (rows changed, the reviews still
    waiting for their run, e.g. a call that sits in the capture spool)."""
    if not reviews:
        return 0, []
    present = {
        row[0]
        for row in conn.execute(
            "select run_id from raw.eval_runs where run_id = any(%s)",
            ([review.run_id for review in reviews],),
        ).fetchall()
    }
    stored = write_reviews(conn, [review for review in reviews if review.run_id in present])
    return stored, [review for review in reviews if review.run_id not in present]


# --- reading review files -----------------------------------------------------------------------


@dataclass(frozen=True)
class LineIssue:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ReviewImport:
    read: int = 0
    stored: int = 0
    unlabelled: int = 0
    issues: list[LineIssue] = field(default_factory=list)


# A cell may hold a whole submission or transcript: csv's 128 KiB default would end the file.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number of the record's first line, record) from a CSV file with a header row.

    Bytes that are not UTF-8 arrive as surrogates (the caller reports the record); a line the
    csv module cannot parse yields {"__error__": reason} and reading goes on after it.
    """
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        try:
            reader.fieldnames  # noqa: B018  (reads the header, so line numbers start after it)
        except csv.Error as exc:
            yield 1, {"__error__": f"not CSV ({exc})"}
        line = reader.line_num + 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, {"__error__": f"not CSV ({exc})"}
            else:
                yield line, record
            line = reader.line_num + 1


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) from a JSONL file; a broken line yields {"__error__": reason}.
    Bytes that are not UTF-8 arrive as surrogates (the caller reports the record)."""
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                yield number, {"__error__": f"not JSON ({exc.msg})"}
                continue
            yield number, record if isinstance(record, dict) else {"__error__": "not a JSON object"}


def read_table(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV for a .csv file, else JSONL."""
    return read_csv(path) if path.suffix.lower() == ".csv" else read_jsonl(path)


def split_tags(value: Any) -> list[str]:
    """Issue tags from a list, or a `|`/`,`-separated cell."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return split_tags(json.loads(text))
        except ValueError:
            pass
    separator = "|" if "|" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (naive = UTC) or epoch seconds / milliseconds; None for empty; ValueError for
    anything else, an epoch beyond the calendar included."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        except (OverflowError, OSError):
            raise ValueError(f"epoch {value!r} is beyond the calendar") from None
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return parse_time(float(text))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _optional_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def import_reviews(
    conn: psycopg.Connection,
    config: Config | None,
    path: Path,
    reviewer: str | None = None,
    source: str = "cli",
) -> ReviewImport:
    """Load a labelled review file (the queue export filled in, or any CSV/JSONL with
    run_id, reviewer, verdict[, score, issue_tags, notes, reviewed_at]); bad lines are reported."""
    result = ReviewImport()
    pending: list[tuple[int, dict[str, Any]]] = []
    for line, record in read_table(path):
        result.read += 1
        if "__error__" in record:
            result.issues.append(LineIssue(line, record["__error__"]))
        elif not str(record.get("verdict") or "").strip():
            result.unlabelled += 1  # a queue row nobody filled in yet
        else:
            pending.append((line, record))
    runs = _run_suites(conn, [record.get("run_id") for _, record in pending])
    vocabularies: dict[str, Vocabulary | None] = {}
    reviews: list[Review] = []
    for line, record in pending:
        review, problem = _review(record, runs, vocabularies, conn, config, reviewer, source)
        if problem:
            result.issues.append(LineIssue(line, problem))
        else:
            reviews.append(review)
    result.stored = write_reviews(conn, reviews)
    return result


def _run_suites(conn: psycopg.Connection, raw_ids: Iterable[Any]) -> dict[str, str | None]:
    ids = []
    for raw in raw_ids:
        try:
            ids.append(str(uuid.UUID(str(raw).strip())))
        except ValueError:
            continue
    if not ids:
        return {}
    rows = conn.execute(
        "select run_id::text, suite from raw.eval_runs where run_id = any(%s::uuid[])", (ids,)
    ).fetchall()
    return dict(rows)


def _review(
    record: dict[str, Any],
    runs: dict[str, str | None],
    vocabularies: dict,
    conn: psycopg.Connection,
    config: Config | None,
    default_reviewer: str | None,
    source: str,
) -> tuple[Review | None, str | None]:
    raw_id = str(record.get("run_id") or "").strip()
    try:
        run_id = uuid.UUID(raw_id)
    except ValueError:
        return None, f"run_id {raw_id!r} is not a UUID"
    if str(run_id) not in runs:
        return None, f"unknown run id {run_id}"
    reviewer = str(record.get("reviewer") or default_reviewer or "").strip()
    if not reviewer:
        return None, "no reviewer (fill the reviewer column or pass --reviewer)"
    suite = runs[str(run_id)]
    if suite is None:
        return None, f"run {run_id} names no suite, so its verdict cannot be validated"
    if suite not in vocabularies:
        vocabularies[suite] = suite_vocabulary(conn, config, suite)
    vocabulary = vocabularies[suite]
    if vocabulary is None:
        return None, f"suite {suite!r} is neither loaded in the warehouse nor configured"
    verdict = vocabulary.verdict(record.get("verdict"))
    if verdict is None:
        return None, (
            f"verdict {str(record.get('verdict'))!r} is not one of "
            f"{', '.join(vocabulary.verdicts)} (suite {suite})"
        )
    tags, unknown = vocabulary.tags(split_tags(record.get("issue_tags")))
    if unknown:
        return None, f"issue tags {', '.join(unknown)} are not in the {suite} taxonomy"
    try:
        score = _optional_float(record.get("score"))
        reviewed_at = parse_time(record.get("reviewed_at"))
    except ValueError as exc:
        return None, f"bad score or reviewed_at: {exc}"
    if score is not None and not 0 <= score <= 1:
        return None, f"score {score} is outside [0, 1]"
    notes = str(record.get("notes") or "").strip() or None
    if unstorable([reviewer, notes]):
        return None, "reviewer or notes hold text Postgres cannot store (NUL, not UTF-8)"
    return Review(run_id, reviewer, verdict, score, tuple(tags), notes, reviewed_at, source), None


# --- the queue ---------------------------------------------------------------------------------

_DRAW_UNREVIEWED = """
with candidates as (
    select r.run_id, coalesce(r.stage, %(no_stage)s) as stratum,
           row_number() over (
               partition by coalesce(r.stage, %(no_stage)s)
               order by md5(%(seed)s || r.run_id::text)
           ) as draw_rank
    from raw.eval_runs r
    where r.source = any(%(sources)s) and r.status = 'ok' and r.role = any(%(roles)s)
      and (%(since)s::timestamptz is null or r.started_at >= %(since)s)
      and (%(stages)s::text[] is null or coalesce(r.stage, %(no_stage)s) = any(%(stages)s))
      and not exists (select 1 from raw.human_reviews h where h.run_id = r.run_id)
      and not exists (select 1 from raw.review_queue q where q.run_id = r.run_id)
)
select run_id, stratum from candidates where draw_rank <= %(per_stage)s order by stratum, draw_rank
"""


def queue_unreviewed(
    conn: psycopg.Connection,
    per_stage: int,
    *,
    stages: Sequence[str] | None = None,
    sources: Sequence[str] = ("production",),
    roles: Sequence[str] = ("grader",),
    since: datetime | None = None,
    seed: int = 11,
    reason: str = QUEUE_REASON,
) -> int:
    """Queue up to `per_stage` settled, unreviewed, not yet queued runs of each stage; returns how many."""
    rows = conn.execute(
        _DRAW_UNREVIEWED,
        {
            "no_stage": NO_STAGE,
            "seed": str(seed),
            "sources": list(sources),
            "roles": list(roles),
            "since": since,
            "stages": list(stages) if stages else None,
            "per_stage": per_stage,
        },
    ).fetchall()
    with conn.transaction():
        return enqueue(conn, [(run_id, stratum, reason) for run_id, stratum in rows])


def enqueue(conn: psycopg.Connection, entries: Sequence[tuple[Any, str | None, str]]) -> int:
    """Add (run_id, stratum, reason) entries to raw.review_queue, once per run; returns new ones."""
    if not entries:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "insert into raw.review_queue (run_id, stratum, reason) values (%s, %s, %s)"
            " on conflict (run_id) do nothing",
            entries,
        )
        return cur.rowcount


_PENDING = """
select q.run_id, r.stage, r.suite, r.item_id, r.model, r.prompt_version, r.started_at, r.rubric,
       r.submission, r.output_text, r.verdict as model_verdict, r.issue_tags as model_issue_tags
from raw.review_queue q
join raw.eval_runs r on r.run_id = q.run_id
where q.exported_at is null
  and not exists (select 1 from raw.human_reviews h where h.run_id = q.run_id)
  and (%(stages)s::text[] is null or coalesce(r.stage, %(no_stage)s) = any(%(stages)s))
order by q.stratum, q.queued_at, q.run_id
"""


def export_queue(conn: psycopg.Connection, out: Path, stages: Sequence[str] | None = None) -> int:
    """Write the queue's unexported, unreviewed runs to CSV or JSONL (by suffix) for reviewers
    to fill in (reviewer, verdict, score, issue_tags, notes); marks them exported, with the
    file's path (learners' submissions are in it: `forget` rewrites it)."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _PENDING, {"stages": list(stages) if stages else None, "no_stage": NO_STAGE}
        ).fetchall()
    out.parent.mkdir(parents=True, exist_ok=True)
    blank = {"reviewer": "", "verdict": "", "score": "", "issue_tags": "", "notes": ""}
    records = [
        {
            **row,
            "run_id": str(row["run_id"]),
            "started_at": row["started_at"].isoformat(),
            "model_issue_tags": "|".join(row["model_issue_tags"] or []),
            **blank,
        }
        for row in rows
    ]
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=QUEUE_COLUMNS)
            writer.writeheader()
            writer.writerows(records)
    else:
        with out.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if rows:
        with conn.transaction():
            conn.execute(
                "update raw.review_queue set exported_at = now(), exported_to = %s"
                " where run_id = any(%s)",
                (str(out.resolve()), [row["run_id"] for row in rows]),
            )
    return len(rows)


# --- erasure -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewErasure:
    reviews: int
    queued: int
    exports: tuple[Path, ...]


def erase_reviews(conn: psycopg.Connection) -> ReviewErasure:
    """Delete the reviews and queue entries of the runs in the erasure set
    (`evals.runlog.ERASURE_SET`); returns counts and the export files that hold those runs."""
    from evals.runlog import ERASURE_SET

    erased = f"(select run_id from {ERASURE_SET})"
    exports = conn.execute(
        f"select distinct exported_to from raw.review_queue where run_id in {erased}"
        " and exported_to is not null order by 1"
    ).fetchall()
    reviews = conn.execute(f"delete from raw.human_reviews where run_id in {erased}").rowcount
    queued = conn.execute(f"delete from raw.review_queue where run_id in {erased}").rowcount
    return ReviewErasure(reviews, queued, tuple(Path(row[0]) for row in exports))


def erase_from_export(path: Path, run_ids: Iterable[uuid.UUID]) -> int:
    """Rewrite one queue export (CSV or JSONL) without the rows of `run_ids`, in place and
    atomically; returns the rows removed (0 when the file is gone)."""
    doomed = {str(run_id) for run_id in run_ids}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        rows = list(reader)
        kept = [row for row in rows if row.get("run_id") not in doomed]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=reader.fieldnames or QUEUE_COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
        content = buffer.getvalue()
    else:  # a reviewer may have broken a line's JSON: its run id still names it
        rows = [line for line in text.splitlines(keepends=True) if line.strip()]
        kept = [line for line in rows if not any(run_id in line for run_id in doomed)]
        content = "".join(kept)
    if len(kept) != len(rows):
        replace_file(path, content)
    return len(rows) - len(kept)
