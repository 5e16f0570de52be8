"""Property-based tests of the golden-set and configuration loaders: whatever a file holds
(any Unicode, NUL, lone surrogates, huge or non-finite numbers, wrong shapes, a cut-off end),
loading ends in a valid result or a report naming file and line, never a traceback; and what
loads is stored verbatim."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.config import Config, ConfigError, load_config
from evals.golden import GoldenSetError, load_suite, store_suite

# Text from the whole code space (surrogates included), with the troublemakers made likely.
_ANY_CHAR = st.characters(exclude_categories=())
_NASTY = st.sampled_from(
    ["\x00", "\ud83d", "\udc0d", "\u202e", "e\u0301", "\ufeff", "\r\n", "'", '"', "|", "\\"]
)
TEXT = st.lists(st.one_of(st.text(_ANY_CHAR, max_size=6), _NASTY), max_size=5).map("".join)
NUMBER = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALAR = st.one_of(TEXT, NUMBER, st.booleans(), st.none())
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
ITEM = st.fixed_dictionaries(
    {"id": st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), TEXT)},
    optional={
        "submission": st.one_of(TEXT, VALUE),
        "expected_verdict": st.one_of(st.sampled_from(["pass", "fail"]), VALUE),
        "stage": st.one_of(TEXT, NUMBER),
        "metadata": VALUE,
        "expected_issue_tags": st.one_of(st.lists(TEXT, max_size=2), VALUE),
    },
)
HEADER = {
    "name": "prop",
    "kind": "grader",
    "verdicts": ["pass", "fail"],
    "passing_verdicts": ["pass"],
    "issue_tags": ["style"],
    "default_rubric": "Grade it.",
}
CUT = st.one_of(st.none(), st.floats(min_value=0, max_value=1))


def _jsonl(items: list[dict]) -> bytes:
    lines = [json.dumps(HEADER)] + [json.dumps(item) for item in items]  # NaN as JSON5-ish NaN
    return ("\n".join(lines) + "\n").encode("utf-8")


def _yaml(items: list[dict]) -> bytes:
    try:
        text = yaml.safe_dump({**HEADER, "items": items}, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):  # PyYAML cannot write it: write JSON, also YAML
        text = json.dumps({**HEADER, "items": items})
    return text.encode("utf-8", "surrogatepass")


def _csv(items: list[dict]) -> bytes:
    columns = ["id", "submission", "expected_verdict", "stage", "metadata"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for item in items:
        row = []
        for column in columns:
            value = item.get(column, "")
            row.append(json.dumps(value) if column == "metadata" else str(value))
        writer.writerow(row)
    return out.getvalue().encode("utf-8", "surrogatepass")


WRITERS = {".jsonl": _jsonl, ".yaml": _yaml, ".csv": _csv}


def _write(folder: Path, suffix: str, items: list[dict], cut: float | None) -> Path:
    data = WRITERS[suffix](items)
    if cut is not None:  # a file cut off anywhere, as by a full disk or an interrupted copy
        data = data[: int(len(data) * cut)]
    path = folder / f"prop{suffix}"
    path.write_bytes(data)
    if suffix == ".csv":
        (folder / "prop.suite.yaml").write_text(yaml.safe_dump(HEADER))
    return path


def _loads_verbatim_or_reports(
    suffix: str, items: list[dict], cut: float | None, folder: Path, url: str
) -> None:
    path = _write(folder, suffix, items, cut)
    try:
        suite = load_suite(path)
    except GoldenSetError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.path in (str(path), str(folder / "prop.suite.yaml"))
            assert issue.line is not None, str(issue)
            str(issue).encode("utf-8")  # printable: surrogates and controls come out escaped
        return
    with psycopg.connect(url) as conn:
        store_suite(conn, suite)
        stored = dict(
            conn.execute(
                "select item_id, inputs->>'submission' from raw.golden_items"
                " where suite_version = %s",
                (suite.version,),
            ).fetchall()
        )
    assert stored == {item.item_id: item.submission for item in suite.items}
    if suffix == ".jsonl" and cut is None:  # JSON keeps every string exactly as it was written
        written = {item["id"]: item.get("submission") for item in items}
        assert {key: written[key] for key in stored} == stored


@pytest.mark.parametrize("suffix", list(WRITERS))
@settings(max_examples=30)  # each example is a warehouse round trip
@given(items=st.lists(ITEM, min_size=1, max_size=4), cut=CUT)
def test_any_golden_file_loads_verbatim_or_is_reported_by_file_and_line(
    suffix: str, items: list[dict], cut: float | None, tmp_path: Path, warehouse_url: str
) -> None:
    _loads_verbatim_or_reports(suffix, items, cut, tmp_path, warehouse_url)


@pytest.mark.fuzz
@pytest.mark.parametrize("suffix", list(WRITERS))
@settings(settings.get_profile("fuzz"))
@given(items=st.lists(ITEM, min_size=1, max_size=12), cut=CUT)
def test_fuzz_golden_files(
    suffix: str, items: list[dict], cut: float | None, tmp_path: Path, warehouse_url: str
) -> None:
    _loads_verbatim_or_reports(suffix, items, cut, tmp_path, warehouse_url)


CONFIG_KEYS = st.sampled_from(
    [
        "models",
        "model",
        "api_key_env",
        "concurrency",
        "default_model",
        "suites",
        "drift",
        "alerts",
        "webhooks",
        "capture",
        "name",
        "url",
    ]
)
CONFIG_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(CONFIG_KEYS, TEXT), inner, max_size=3),
    ),
    max_leaves=10,
)


@given(document=st.dictionaries(st.one_of(CONFIG_KEYS, TEXT), CONFIG_VALUE, max_size=4), cut=CUT)
def test_any_config_file_loads_or_fails_with_a_config_error(
    document: dict, cut: float | None, tmp_path: Path
) -> None:
    data = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if cut is not None:
        data = data[: int(len(data) * cut)]
    path = tmp_path / "evalhouse.yaml"
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        str(exc).encode("utf-8")
        return
    assert isinstance(config, Config)
