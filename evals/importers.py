"""Importing results exported by other tools (promptfoo, spreadsheets, in-house scripts).

Teams arrive with history. A mapping file (YAML, see docs/import-mapping.md) says which source
field fills which run-log column, which constants to add, and how source verdicts ("1", 1,
true, "Tie") map onto the suite's vocabulary; optionally it maps one or several human labels
per record into raw.human_reviews. Rules that keep the history honest:

- a verdict that matches no declared value is stored as `parse_error` with the raw text kept
  (attributes.raw_verdict), never dropped or guessed;
- a record that cannot be mapped (no model, a non-number latency, a bad timestamp...) is
  reported with its line number and the reason, and the rest import;
- a value the run log cannot hold faithfully (a NUL or an unpaired surrogate in text, bytes
  that are not UTF-8, a non-finite number, a count beyond the integer column, a timestamp
  outside PLAUSIBLE_SINCE .. now + 1 day) makes its record unmappable, reported like the others;
- a mapped source path that no record has is an error (a misspelling would leave a column
  empty), unless the caller allows that column to be missing;
- re-importing the same file adds nothing: a row's id is derived from its source record (and
  its occurrence, so identical repeated judgments stay distinct) and the run log ignores ids it
  has; repeated judgments of one item are rows with their own `trial` or position attribute;
- `replace=True` corrects an import: the live rows a previous import of the same file produced
  are marked superseded (kept, never deleted, excluded by staging) and the file is stored anew
  under run ids derived from the idempotency key and the mapping.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evals.batches import track
from evals.config import validation_problems
from evals.reviews import (
    LineIssue,
    Review,
    Vocabulary,
    cell_text,
    parse_time,
    read_csv,
    read_jsonl,
    split_tags,
    suite_vocabulary,
    write_reviews,
)
from evals.runlog import (
    ROLES,
    RunRecord,
    idempotency_key,
    supersede_imports,
    unstorable,
    unstorable_columns,
    write_runs,
)

if TYPE_CHECKING:
    import psycopg

    from evals.batches import BatchSpec, Lineage
    from evals.config import Config

_RUN_NAMESPACE = uuid.UUID("9a7c1f0e-3b2d-4e6a-8f15-7d0c2b4e6a81")
_CHUNK = 1000
# Plausible values: the run log's integer columns are int4; a call before 2000 or more than a
# day ahead is a unit mistake (ms read as s, a 9999-12-31 placeholder), not history.
INT_MAX = 2**31 - 1
PLAUSIBLE_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
_AHEAD = timedelta(days=1)
_UNSTORABLE_TEXT = "text Postgres cannot store (a NUL, an unpaired surrogate or non-UTF-8 bytes)"

TEXT_COLUMNS = (
    "item_id",
    "suite",
    "suite_version",
    "stage",
    "category",
    "model",
    "response_model",
    "provider",
    "role",
    "prompt_name",
    "prompt_version",
    "output_text",
    "subject_id",
    "touchpoint",
    "rubric",
    "submission",
    "prior_context",
    "error_message",
    "batch_id",
)
FLOAT_COLUMNS = ("score", "latency_ms", "latency_s", "cost_usd")
INT_COLUMNS = ("input_tokens", "output_tokens", "trial")
SPECIAL_COLUMNS = (
    "prompt",
    "messages",
    "verdict",
    "expected_verdict",
    "started_at",
    "inputs",
    "feedback",
    "issue_tags",
)
MAPPABLE = frozenset(TEXT_COLUMNS + FLOAT_COLUMNS + INT_COLUMNS + SPECIAL_COLUMNS)


class MappingError(ValueError):
    """The mapping file is unreadable or invalid; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VocabularySpec(_Strict):
    verdicts: list[str] = Field(min_length=1)
    passing: list[str] = Field(default_factory=list)
    issue_tags: list[str] = Field(default_factory=list)


class ReviewSpec(_Strict):
    """One human label per record: a constant reviewer or a reviewer field, and the label fields."""

    reviewer: str | None = None
    reviewer_field: str | None = None
    verdict: str
    score: str | None = None
    issue_tags: str | None = None
    notes: str | None = None
    reviewed_at: str | None = None

    @model_validator(mode="after")
    def _one_reviewer(self) -> ReviewSpec:
        if (self.reviewer is None) == (self.reviewer_field is None):
            raise ValueError("set exactly one of reviewer or reviewer_field")
        return self


class LineageSpec(_Strict):
    """An imported model's place in its family, as a model in evalhouse.yaml declares it."""

    family: str | None = None
    checkpoint: str | None = None
    step: int | None = Field(None, ge=0)
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)


class ImportMapping(_Strict):
    """The mapping file (docs/import-mapping.md)."""

    format: Literal["jsonl", "csv", "json"] | None = None
    records: str | None = Field(None, description="json only: dotted path to the list of records")
    suite: str | None = None
    vocabulary: VocabularySpec | None = None
    role: str = "candidate"
    defaults: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    verdict_values: dict[str, str] = Field(default_factory=dict)
    reviews: list[ReviewSpec] = Field(default_factory=list)
    models: dict[str, LineageSpec] = Field(
        default_factory=dict, description="Lineage per imported model (else evalhouse.yaml's)."
    )

    @model_validator(mode="before")
    @classmethod
    def _stringify_value_keys(cls, data: Any) -> Any:
        # YAML reads `1: pass` and `true: pass` as int / bool keys; the source cells may be either.
        if isinstance(data, dict) and isinstance(data.get("verdict_values"), dict):
            data = {
                **data,
                "verdict_values": {
                    cell_text(key): cell_text(value)
                    for key, value in data["verdict_values"].items()
                },
            }
        return data

    @model_validator(mode="after")
    def _known_columns(self) -> ImportMapping:
        for where, keys in (("fields", self.fields), ("defaults", self.defaults)):
            for key in keys:
                if key not in MAPPABLE and not key.startswith("attributes."):
                    raise ValueError(
                        f"{where}.{key}: not a run-log column (see docs/import-mapping.md)"
                    )
        if self.role not in ROLES:
            raise ValueError(f"role: must be one of {', '.join(ROLES)}")
        if "prompt" in self.fields and "messages" in self.fields:
            raise ValueError("fields: map prompt or messages, not both")
        if self.records and self.format not in (None, "json"):
            raise ValueError("records: only applies to format json")
        return self


def load_mapping(path: Path | str) -> ImportMapping:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from None
    try:
        return ImportMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{path}: invalid mapping\n{validation_problems(exc)}") from None


# --- reading the source ----------------------------------------------------------------------


def field_value(record: Any, path: str) -> Any:
    """A (possibly nested) field: the literal key first (CSV headers may hold dots), then a
    dotted walk through dicts and list indexes; None when absent."""
    return _lookup(record, path)[1]


def _lookup(record: Any, path: str) -> tuple[bool, Any]:
    """(whether `path` exists in `record`, its value); a null on the way ends the walk."""
    if isinstance(record, dict) and path in record:
        return True, record[path]
    value = record
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return False, None
        if value is None:
            return True, None
    return True, value


def _records(path: Path, mapping: ImportMapping) -> Iterator[tuple[int, dict[str, Any]]]:
    kind = mapping.format or {".csv": "csv", ".json": "json"}.get(path.suffix.lower(), "jsonl")
    if kind == "csv":
        yield from read_csv(path)
        return
    if kind == "jsonl":
        yield from read_jsonl(path)
        return
    try:  # bytes that are not UTF-8 reach the record as surrogates, reported with their record
        document = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except ValueError as exc:
        raise MappingError(f"{path}: not a JSON document ({exc})") from None
    records = field_value(document, mapping.records) if mapping.records else document
    if not isinstance(records, list):
        raise MappingError(f"{path}: {mapping.records or 'the document'} is not a list of records")
    for index, record in enumerate(records, start=1):  # "line" = position in the list
        yield index, record if isinstance(record, dict) else {"__error__": "not a JSON object"}


# --- mapping one record ----------------------------------------------------------------------


class _Unmappable(ValueError):
    """This record cannot become a row; the message says why (reported with its line)."""


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(column: str, value: Any, kind: type) -> float | int | None:
    if _empty(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _Unmappable(f"{column}: {_shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise _Unmappable(f"{column}: {_shown(value)} is not a finite number")
    if kind is int:
        if not number.is_integer():
            raise _Unmappable(f"{column}: {_shown(value)} is not a whole number")
        if number > INT_MAX:
            raise _Unmappable(f"{column}: {_shown(value)} is beyond {INT_MAX}")
        number = int(number)
    if number < 0 and column != "score":
        raise _Unmappable(f"{column}: {_shown(value)} is negative")
    return number


def _shown(value: Any) -> str:
    """A source value in a report line: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _timestamp(column: str, value: Any) -> datetime | None:
    """A plausible time (PLAUSIBLE_SINCE .. now + 1 day), or None for no value."""
    try:
        parsed = parse_time(value)
    except (TypeError, ValueError):
        raise _Unmappable(f"{column}: {_shown(value)} is not a timestamp") from None
    if parsed is not None and not PLAUSIBLE_SINCE <= parsed <= datetime.now(UTC) + _AHEAD:
        raise _Unmappable(
            f"{column}: {parsed.isoformat()} is outside {PLAUSIBLE_SINCE.date()} .. now + 1 day"
        )
    return parsed


def _json_value(column: str, value: Any, expected: type) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Unmappable(f"{column}: not valid JSON") from None
    if not isinstance(value, expected):
        raise _Unmappable(f"{column}: expected a JSON {expected.__name__}")
    return value


def _messages(fields: dict[str, Any]) -> list[dict[str, Any]]:
    if not _empty(fields.get("messages")):
        messages = _json_value("messages", fields["messages"], list)
    elif not _empty(fields.get("prompt")):
        prompt = fields["prompt"]
        messages = None
        if isinstance(prompt, str) and prompt.lstrip().startswith("["):
            try:  # promptfoo stores chat prompts as a JSON list of messages in prompt.raw
                messages = json.loads(prompt)
            except ValueError:
                messages = None
        if messages is None:
            messages = (
                prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
            )
    else:
        return []
    if not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
        raise _Unmappable("messages: expected a list of {role, content} objects")
    return messages


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    already_present: int = 0
    parse_errors: int = 0
    reviews_stored: int = 0
    superseded: int = 0
    missing_allowed: list[str] = field(default_factory=list)  # columns no record filled
    issues: list[LineIssue] = field(default_factory=list)

    @property
    def mapped(self) -> int:
        return self.imported + self.already_present


class _Mapper:
    def __init__(
        self,
        mapping: ImportMapping,
        conn: psycopg.Connection,
        config: Config | None,
        source_name: str,
        replacing: bool = False,
    ):
        self.mapping = mapping
        self.conn = conn
        self.config = config
        self.source_name = source_name
        self._vocabularies: dict[str | None, Vocabulary | None] = {}
        self._occurrences: Counter[str] = Counter()
        # A replacing import derives run ids from the mapping too, so a corrected mapping's rows
        # are new rows beside the ones they supersede, and the same replacement twice is one.
        self._run_id_salt = ":" + mapping.model_dump_json() if replacing else ""

    def vocabulary(self, suite: str | None) -> Vocabulary | None:
        spec = self.mapping.vocabulary
        if spec is not None:
            return Vocabulary(
                suite or "", tuple(spec.verdicts), tuple(spec.passing), tuple(spec.issue_tags)
            )
        if suite not in self._vocabularies:
            self._vocabularies[suite] = (
                suite_vocabulary(self.conn, self.config, suite) if suite else None
            )
        return self._vocabularies[suite]

    def verdict(self, raw: Any, vocabulary: Vocabulary) -> str | None:
        text = cell_text(raw)
        values = self.mapping.verdict_values
        if text in values:
            return vocabulary.verdict(values[text])
        lowered = {key.lower(): value for key, value in values.items()}
        if text.lower() in lowered:
            return vocabulary.verdict(lowered[text.lower()])
        return vocabulary.verdict(text)

    def row(self, record: dict[str, Any]) -> tuple[RunRecord, list[Review]]:
        mapping = self.mapping
        values: dict[str, Any] = dict(mapping.defaults)
        for column, path in mapping.fields.items():
            found = field_value(record, path)
            if not _empty(found):
                values[column] = found
        suite = cell_text(values["suite"]) if not _empty(values.get("suite")) else mapping.suite
        vocabulary = self.vocabulary(suite)
        columns: dict[str, Any] = {
            name: cell_text(values[name]) for name in TEXT_COLUMNS if not _empty(values.get(name))
        }
        columns.update({name: _number(name, values.get(name), float) for name in FLOAT_COLUMNS})
        columns.update({name: _number(name, values.get(name), int) for name in INT_COLUMNS})
        latency_s = columns.pop("latency_s")
        if columns["latency_ms"] is None and latency_s is not None:
            columns["latency_ms"] = latency_s * 1000
        columns["trial"] = columns["trial"] or 0
        columns["suite"] = suite
        columns.setdefault("role", mapping.role)
        if columns["role"] not in ROLES:
            raise _Unmappable(f"role: {columns['role']!r} is not one of {', '.join(ROLES)}")
        if "model" not in columns:
            raise _Unmappable("model: no value (map a field or set defaults.model)")
        started_at = _timestamp("started_at", values.get("started_at")) or datetime.now(UTC)
        attributes = {
            key.removeprefix("attributes."): value
            for key, value in values.items()
            if key.startswith("attributes.")
        }
        record_out = RunRecord(
            idempotency_key="",
            source="import",
            model=columns.pop("model"),
            role=columns.pop("role"),
            started_at=started_at,
            status="ok",
            messages=_messages(values),
            inputs=_json_value("inputs", values["inputs"], dict)
            if not _empty(values.get("inputs"))
            else {},
            issue_tags=split_tags(values.get("issue_tags")),
            attributes={**attributes, "imported_from": self.source_name},
            **columns,
        )
        feedback = values.get("feedback")
        if not _empty(feedback):
            record_out.feedback = (
                feedback if isinstance(feedback, dict) else {"text": cell_text(feedback)}
            )
        self._verdicts(record_out, values, vocabulary)
        if unstorable_at := unstorable_columns(record_out):
            raise _Unmappable(f"{', '.join(unstorable_at)}: {_UNSTORABLE_TEXT}")
        self._identify(record_out, record)
        return record_out, self._reviews(record_out, record, vocabulary)

    def _verdicts(
        self, row: RunRecord, values: dict[str, Any], vocabulary: Vocabulary | None
    ) -> None:
        wants = [name for name in ("verdict", "expected_verdict") if not _empty(values.get(name))]
        if wants and vocabulary is None:
            raise _Unmappable(
                f"verdicts need a vocabulary: suite {row.suite!r} is neither loaded, "
                "configured nor declared under `vocabulary:`"
            )
        if not _empty(values.get("expected_verdict")):
            expected = self.verdict(values["expected_verdict"], vocabulary)
            if expected is None:
                raise _Unmappable(
                    f"expected_verdict: {values['expected_verdict']!r} matches no "
                    f"declared value ({', '.join(vocabulary.verdicts)})"
                )
            row.expected_verdict = expected
        if not _empty(values.get("error_message")):
            row.status, row.error_class = "error", "ImportedError"
            return
        if _empty(values.get("verdict")):
            return
        verdict = self.verdict(values["verdict"], vocabulary)
        if verdict is None:
            raw = cell_text(values["verdict"])
            row.status = "parse_error"
            row.attributes["raw_verdict"] = raw
            row.output_text = row.output_text or raw
            return
        row.verdict, row.passed = verdict, verdict in vocabulary.passing
        tags, unknown = vocabulary.tags(row.issue_tags)
        row.issue_tags = tags
        if unknown:
            row.attributes["unknown_issue_tags"] = unknown

    def _identify(self, row: RunRecord, record: dict[str, Any]) -> None:
        """Same source record (and occurrence) → same run id, whatever the file is called."""
        canonical = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
        # surrogatepass: a record holding a surrogate still has an identity (and is reported).
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        self._occurrences[digest] += 1
        row.idempotency_key = idempotency_key(
            "import", row.suite, digest, self._occurrences[digest]
        )
        row.run_id = uuid.uuid5(_RUN_NAMESPACE, row.idempotency_key + self._run_id_salt)

    def _reviews(
        self, row: RunRecord, record: dict[str, Any], vocabulary: Vocabulary | None
    ) -> list[Review]:
        reviews = []
        for spec in self.mapping.reviews:
            raw_verdict = field_value(record, spec.verdict)
            if _empty(raw_verdict):
                continue  # this reviewer did not label this record
            reviewer = spec.reviewer or cell_text(
                field_value(record, spec.reviewer_field or "") or ""
            )
            if not reviewer:
                raise _Unmappable(f"review: no reviewer in field {spec.reviewer_field!r}")
            if vocabulary is None:
                raise _Unmappable("review: no vocabulary to validate the label against")
            verdict = self.verdict(raw_verdict, vocabulary)
            if verdict is None:
                raise _Unmappable(
                    f"review by {reviewer}: {raw_verdict!r} matches no declared value "
                    f"({', '.join(vocabulary.verdicts)})"
                )
            tags, unknown = vocabulary.tags(split_tags(field_value(record, spec.issue_tags or "")))
            if unknown:
                raise _Unmappable(f"review by {reviewer}: unknown issue tags {', '.join(unknown)}")
            try:
                score = _number("review score", field_value(record, spec.score or ""), float)
                reviewed_at = _timestamp("reviewed_at", field_value(record, spec.reviewed_at or ""))
            except _Unmappable as exc:
                raise _Unmappable(f"review by {reviewer}: {exc}") from None
            notes = field_value(record, spec.notes or "")
            if unstorable([reviewer, notes]):
                raise _Unmappable(f"review by {reviewer!r}: {_UNSTORABLE_TEXT}")
            reviews.append(
                Review(
                    row.run_id,
                    reviewer,
                    verdict,
                    score,
                    tuple(tags),
                    None if _empty(notes) else cell_text(notes),
                    reviewed_at or row.started_at,
                    source="import",
                )
            )
        return reviews


def import_file(
    conn: psycopg.Connection,
    path: Path | str,
    mapping: ImportMapping,
    config: Config | None = None,
    *,
    replace: bool = False,
    allow_missing: Sequence[str] = (),
) -> ImportReport:
    """Map and store every record of `path`; unmappable records are reported, the rest stored.

    MappingError (nothing stored) when a mapped source path matches no record, unless its
    column is in `allow_missing`. `replace` supersedes what earlier imports of the file stored.
    """
    path = Path(path)
    mapper = _Mapper(mapping, conn, config, path.name, replacing=replace)
    report = ImportReport()
    mapped: list[tuple[int, RunRecord, list[Review]]] = []
    found: set[str] = set()
    paths = _source_paths(mapping)
    for line, record in _records(path, mapping):
        report.read += 1
        if "__error__" in record:
            report.issues.append(LineIssue(line, record["__error__"]))
            continue
        found.update(name for name, source in paths.items() if _lookup(record, source)[0])
        try:
            row, row_reviews = mapper.row(record)
        except _Unmappable as exc:
            report.issues.append(LineIssue(line, str(exc)))
            continue
        mapped.append((line, row, row_reviews))
        report.parse_errors += row.status == "parse_error"
    report.missing_allowed = _missing_paths(path, paths, found, report.read, allow_missing)
    rows = [row for _, row, _ in mapped]
    with ExitStack() as records:
        for spec in _batches(rows, mapping, config, path.name):
            records.enter_context(track(conn, spec))
        with conn.transaction():
            if replace:
                report.superseded = supersede_imports(
                    conn,
                    path.name,
                    keys=[row.idempotency_key for row in rows],
                    keep=[row.run_id for row in rows],
                )
            reviews: list[Review] = []
            refused = 0
            for start in range(0, len(mapped), _CHUNK):
                chunk = mapped[start : start + _CHUNK]
                for line, row_reviews, refusal in _store(conn, chunk, report):
                    if refusal is None:
                        reviews.extend(row_reviews)
                    else:
                        refused += 1
                        report.issues.append(LineIssue(line, refusal))
            report.already_present = len(mapped) - report.imported - refused
            report.reviews_stored = write_reviews(conn, reviews)
    report.issues.sort(key=lambda issue: issue.line)
    return report


def _store(
    conn: psycopg.Connection,
    chunk: Sequence[tuple[int, RunRecord, list[Review]]],
    report: ImportReport,
) -> Iterator[tuple[int, list[Review], str | None]]:
    """Write a chunk; if the warehouse refuses it, row by row, naming each refused record.
    Yields (line, the record's reviews, the refusal or None)."""
    import psycopg

    try:
        report.imported += write_runs(conn, [row for _, row, _ in chunk])
    except (psycopg.DataError, psycopg.IntegrityError):
        pass
    else:
        yield from ((line, reviews, None) for line, _, reviews in chunk)
        return
    for line, row, reviews in chunk:
        try:
            report.imported += write_runs(conn, [row])
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            yield line, reviews, f"refused by the warehouse: {type(exc).__name__}: {str(exc)[:200]}"
        else:
            yield line, reviews, None


def _source_paths(mapping: ImportMapping) -> dict[str, str]:
    """Every mapped source path by the name `allow_missing` uses: the column, or
    reviews.N.<label field> for a review's fields."""
    paths = dict(mapping.fields)
    for index, spec in enumerate(mapping.reviews):
        for name in ("reviewer_field", "verdict", "score", "issue_tags", "notes", "reviewed_at"):
            if (source := getattr(spec, name)) is not None:
                paths[f"reviews.{index}.{name}"] = source
    return paths


def _missing_paths(
    path: Path, paths: dict[str, str], found: set[str], records: int, allowed: Sequence[str]
) -> list[str]:
    """The allowed names whose source path no record has; MappingError for any other."""
    if not records:
        return []
    missing = [name for name in paths if name not in found]
    if unexpected := [name for name in missing if name not in allowed]:
        raise MappingError(
            f"{path.name}: "
            + "; ".join(
                f"{'' if name.startswith('reviews.') else 'fields.'}{name}: source path "
                f"{paths[name]!r} matches nothing in any of the {records} records"
                for name in unexpected
            )
            + f" (check the spelling, or pass --allow-missing {unexpected[0]})"
        )
    return missing


def _batches(
    rows: list[RunRecord], mapping: ImportMapping, config: Config | None, file_name: str
) -> list[BatchSpec]:
    """One evaluation-run record per batch key × model × suite version × prompt version of the
    file (batch key `import:<file name>` where the mapping gives none); each row names its own."""
    from evals.batches import ATTRIBUTE, BatchSpec
    from evals.runner.inputs import code_version

    specs: dict[tuple, BatchSpec] = {}
    for row in rows:
        row.batch_id = row.batch_id or f"import:{file_name}"
        identity = (row.batch_id, row.source, row.model, row.suite, row.suite_version)
        identity += (row.prompt_version,)
        if identity not in specs:
            specs[identity] = BatchSpec(
                kind="import",
                batch_key=row.batch_id,
                source=row.source,
                model=row.model,
                started_by="cli",
                suite=row.suite,
                suite_version=row.suite_version,
                prompt_version=row.prompt_version,
                code_version=code_version(),
                lineage=_lineage(mapping, config, row.model),
            )
        row.attributes[ATTRIBUTE] = str(specs[identity].batch_id)
    return list(specs.values())


def _lineage(mapping: ImportMapping, config: Config | None, model: str) -> Lineage:
    """The mapping's lineage for the model, else evalhouse.yaml's, else none."""
    from evals.batches import Lineage, lineage_of

    declared = mapping.models.get(model)
    if declared is not None:
        return Lineage(
            declared.family,
            declared.checkpoint,
            declared.step,
            declared.owner,
            tuple(declared.tags),
        )
    return lineage_of(config, model) if config is not None else Lineage()
