"""Golden sets: every mistake is reported with file, line and field; nothing bad reaches the
warehouse; versions are content hashes; loading is idempotent; the shipped suites hold up."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.config import load_config
from evals.golden import (
    GoldenSetError,
    load_suite,
    load_suites,
    store_suite,
    suites_from_config,
)
from tests.conftest import REPO_ROOT

GRADER_SUITE = REPO_ROOT / "golden_sets" / "intro_python_grader.yaml"
ANSWER_SUITE = REPO_ROOT / "golden_sets" / "general_qa.yaml"
EXAMPLES = REPO_ROOT / "golden_sets" / "examples"

VALID_YAML = """\
name: mini
description: A tiny grader suite for tests.
kind: grader
verdicts: [pass, revise, fail]
passing_verdicts: [pass]
issue_tags: [off_by_one, style]
default_rubric: Sum 1..n inclusive.
items:
  - id: a1
    stage: loops
    submission: |
      total = sum(range(1, n + 1))
    expected_verdict: pass
  - id: a2
    stage: loops
    submission: |
      total = sum(range(1, n))
    expected_verdict: revise
    expected_issue_tags: [off_by_one]
"""

VALID_JSONL_HEADER = {
    "name": "mini-answers",
    "kind": "answer",
    "verdicts": ["correct", "incorrect"],
    "passing_verdicts": ["correct"],
    "default_rubric": "Compare with the expected answer.",
}

CSV_HEADER_YAML = """\
name: mini-csv
kind: grader
verdicts: [pass, fail]
passing_verdicts: [pass]
issue_tags: [style, grammar]
default_rubric: One paragraph.
"""

runner = CliRunner()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


def golden_row_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        suites = conn.execute("select count(*) from raw.golden_suites").fetchone()[0]
        items = conn.execute("select count(*) from raw.golden_items").fetchone()[0]
    return suites, items


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing needle, so cases stay readable."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


# --- one case per error kind: (file name, content, line, item id, field, message part) --------


def _yaml_case(
    old: str, new: str, needle: str, item: str | None, field: str, message: str, occurrence: int = 1
):
    text = VALID_YAML.replace(old, new, 1)
    assert text != VALID_YAML
    return ("suite.yaml", text, line_of(text, needle, occurrence), item, field, message)


def _error_cases() -> dict[str, tuple]:
    grader_jsonl = {**VALID_JSONL_HEADER, "kind": "grader"}
    return {
        "broken yaml": _yaml_case(
            "  - id: a2\n", "  - id: a2\n   bad: [unclosed\n", "bad:", None, "(yaml)", "broken YAML"
        ),
        "broken jsonl": (
            "suite.jsonl",
            jsonl(VALID_JSONL_HEADER) + '{"id": "q1", "question": \n',
            2,
            None,
            "(json)",
            "broken JSON",
        ),
        "broken csv": (
            "suite.csv",
            'id,submission,expected_verdict\nc1,"never closed,pass\n',
            2,
            None,
            "(csv)",
            "broken CSV",
        ),
        "missing field": _yaml_case(
            "    expected_verdict: revise\n",
            "",
            "- id: a2",
            "a2",
            "expected_verdict",
            "missing field",
        ),
        "wrong type": _yaml_case(
            "[off_by_one]",
            "off_by_one",
            "expected_issue_tags",
            "a2",
            "expected_issue_tags",
            "must be a list",
        ),
        "duplicate id": _yaml_case(
            "id: a2", "id: a1", "id: a1", "a1", "id", "duplicate id", occurrence=2
        ),
        "unknown verdict": _yaml_case(
            "expected_verdict: revise",
            "expected_verdict: meh",
            "meh",
            "a2",
            "expected_verdict",
            "unknown verdict 'meh'",
        ),
        "unknown issue tag": _yaml_case(
            "[off_by_one]",
            "[off_by_two]",
            "off_by_two",
            "a2",
            "expected_issue_tags",
            "unknown issue tag 'off_by_two'",
        ),
        "passing verdict not in verdicts": _yaml_case(
            "passing_verdicts: [pass]",
            "passing_verdicts: [pass, great]",
            "passing_verdicts",
            None,
            "passing_verdicts",
            "'great' is not one of the suite's verdicts",
        ),
        "grader item without submission": _yaml_case(
            "    submission: |\n      total = sum(range(1, n))\n",
            "",
            "- id: a2",
            "a2",
            "submission",
            "missing field",
        ),
        "answer item without question": (
            "suite.jsonl",
            jsonl(
                VALID_JSONL_HEADER,
                {"id": "q1", "question": "2+2?", "expected_answer": 4},
                {"id": "q2", "expected_answer": "5"},
            ),
            3,
            "q2",
            "question",
            "missing field",
        ),
        "unknown field": _yaml_case(
            "    expected_verdict: revise\n",
            "    expected_verdict: revise\n    expected_verdit: pass\n",
            "expected_verdit",
            "a2",
            "expected_verdit",
            "unknown field",
        ),
        "duplicate key": _yaml_case(
            "    expected_verdict: revise\n",
            "    expected_verdict: revise\n    expected_verdict: pass\n",
            "expected_verdict: pass",
            "a2",
            "expected_verdict",
            "duplicate key",
            occurrence=2,
        ),
        "invalid scorer": (
            "suite.jsonl",
            jsonl(
                VALID_JSONL_HEADER,
                {
                    "id": "q1",
                    "question": "2+2?",
                    "expected_answer": "four",
                    "scorer": {"type": "numeric", "tolerance": 0},
                },
            ),
            2,
            "q1",
            "expected_answer",
            "is not a number",
        ),
        "unknown kind": _yaml_case(
            "kind: grader", "kind: grading", "kind:", None, "kind", "must be one of grader, answer"
        ),
        "NUL character": _yaml_case(
            "id: a2\n    stage: loops",
            'id: a2\n    stage: "lo\\0ops"',
            "lo\\0ops",
            "a2",
            "stage",
            "contains a NUL character",
        ),
        "NUL character in a csv cell": (
            "suite.csv",
            "id,submission,expected_verdict\nc1,ok,pass\nc2,a\x00b,pass\n",
            3,
            "c2",
            "submission",
            "contains a NUL character",
        ),
        "lone surrogate (a truncated emoji)": (
            "suite.jsonl",
            jsonl(
                VALID_JSONL_HEADER, {"id": "q1", "question": "2+2? \ud83d", "expected_answer": 4}
            ),
            2,
            "q1",
            "question",
            "lone UTF-16 surrogate",
        ),
        "non-finite number": (
            "suite.jsonl",
            jsonl(
                VALID_JSONL_HEADER,
                {"id": "q1", "question": "2+2?", "expected_answer": 4, "metadata": {"w": 1e999}},
            ),
            2,
            "q1",
            "metadata",
            "the number inf, which JSON cannot hold",
        ),
        "integer past Python's digit limit": (
            "suite.jsonl",
            jsonl(VALID_JSONL_HEADER)
            + '{"id": "q1", "question": "?", "expected_answer": '
            + "9" * 5000
            + "}\n",
            2,
            None,
            "(json)",
            "unreadable value: Exceeds the limit",
        ),
        "YAML alias bomb": _yaml_case(
            "    expected_verdict: revise\n",
            "    expected_verdict: revise\n    metadata:\n"
            + "".join(
                f"      {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
                for prev, name in zip("abcdefg", "bcdefgh", strict=True)
            ).replace(
                "      b: &b [*a", "      a: &a [x, x, x, x, x, x, x, x, x]\n      b: &b [*a", 1
            ),
            "name: mini",
            None,
            "(yaml)",
            "aliases expand to",
        ),
        "csv row with too many cells": (
            "suite.csv",
            "id,submission,expected_verdict\nc1,ok text,pass\nc2,a,b,pass\n",
            3,
            None,
            "(csv)",
            "row has 4 cells",
        ),
        "csv unknown column": (
            "suite.csv",
            "id,submission,expected_verdict,colour\nc1,x,pass,red\n",
            1,
            None,
            "colour",
            "unknown column",
        ),
        "jsonl without header": (
            "suite.jsonl",
            jsonl(grader_jsonl | {"id": "x"}),
            1,
            None,
            "(header)",
            "first line must be the suite header",
        ),
    }


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_each_error_kind_names_file_line_and_field_and_writes_nothing(
    case: str, tmp_path: Path, warehouse_url: str
) -> None:
    name, text, line, item_id, field, message = ERROR_CASES[case]
    path = write(tmp_path, name, text)
    if name.endswith(".csv"):
        write(tmp_path, "suite.suite.yaml", CSV_HEADER_YAML)
    valid = write(tmp_path, "valid.yaml", VALID_YAML.replace("name: mini", "name: other"))

    with pytest.raises(GoldenSetError) as raised:
        load_suite(path)
    matching = [i for i in raised.value.issues if i.field == field and message in i.message]
    assert matching, f"no {field!r} issue with {message!r} in:\n{raised.value}"
    issue = matching[0]
    assert (issue.path, issue.line, issue.item_id) == (str(path), line, item_id)
    item_part = f" item {item_id}:" if item_id else ""
    assert f"{path}:{line}:{item_part} {field}: " in str(raised.value)

    result = runner.invoke(app, ["golden", "load", str(valid), str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}:" in result.output
    assert "nothing was written" in result.output
    assert golden_row_counts(warehouse_url) == (0, 0)  # the valid file was not loaded either


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        VALID_YAML.replace("expected_verdict: pass", "expected_verdict: great")
        .replace("[off_by_one]", "[nope]")
        .replace("id: a2", "id: a1")
    )
    with pytest.raises(GoldenSetError) as raised:
        load_suite(write(tmp_path, "many.yaml", text))
    fields = [issue.field for issue in raised.value.issues]
    assert fields == ["expected_verdict", "id", "expected_issue_tags"]
    assert [issue.line for issue in raised.value.issues] == sorted(
        issue.line for issue in raised.value.issues
    )


def test_a_csv_header_file_error_points_at_the_header_file(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "essays.csv", "id,submission,expected_verdict\ne1,text,pass\n")
    header = write(tmp_path, "essays.suite.yaml", CSV_HEADER_YAML.replace("[pass]", "[passed]"))
    with pytest.raises(GoldenSetError) as raised:
        load_suite(csv_path)
    assert f"{header}:4: passing_verdicts: 'passed'" in str(raised.value)


def test_a_csv_without_its_header_file_says_where_the_header_belongs(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "lonely.csv", "id,submission,expected_verdict\ne1,text,pass\n")
    with pytest.raises(GoldenSetError, match=r"lonely\.suite\.yaml"):
        load_suite(csv_path)


def test_a_suite_name_that_differs_from_its_config_key_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "mini.yaml", VALID_YAML)
    config = write(tmp_path, "evalhouse.yaml", "suites:\n  tiny:\n    path: mini.yaml\n")
    with pytest.raises(GoldenSetError, match=r"file names the suite 'mini' but .* calls it 'tiny'"):
        suites_from_config(load_config(config))


# --- the shipped suites ---------------------------------------------------------------------


def test_the_grader_suite_is_a_realistic_course_rubric_set() -> None:
    suite = load_suite(GRADER_SUITE)
    assert (suite.name, suite.kind, suite.passing_verdicts) == ("intro-python", "grader", ("pass",))
    assert len(suite.items) >= 60
    assert len(suite.stage_counts()) >= 5 and min(suite.stage_counts().values()) >= 8
    verdicts = Counter(item.expected_verdict for item in suite.items)
    share = {verdict: count / len(suite.items) for verdict, count in verdicts.items()}
    assert 0.35 <= share["pass"] <= 0.55 and 0.25 <= share["revise"] <= 0.45
    assert 0.12 <= share["fail"] <= 0.3
    assert all(i.submission and i.rubric for i in suite.items)
    assert all(i.expected_issue_tags for i in suite.items if i.expected_verdict != "pass")
    assert sum(1 for i in suite.items if i.prior_context) >= 3
    used_tags = {tag for item in suite.items for tag in item.expected_issue_tags}
    assert len(used_tags) >= 10


def test_the_grader_suites_syntax_error_tags_match_what_python_parses() -> None:
    import ast

    for item in load_suite(GRADER_SUITE).items:
        try:
            ast.parse(item.submission)
            parses = True
        except SyntaxError:
            parses = False
        assert parses != ("syntax_error" in item.expected_issue_tags), item.item_id


def test_the_answer_suite_covers_every_category_with_scorers_where_checkable() -> None:
    suite = load_suite(ANSWER_SUITE)
    assert (suite.name, suite.kind, suite.verdicts) == (
        "general-qa",
        "answer",
        ("correct", "partial", "incorrect"),
    )
    assert len(suite.items) >= 50
    categories = Counter(item.category for item in suite.items)
    assert set(categories) == {
        "reasoning",
        "math",
        "coding",
        "hallucination",
        "instruction_following",
        "safety",
    }
    assert min(categories.values()) >= 8
    assert all(i.expected_answer for i in suite.items)
    math_items = [i for i in suite.items if i.category == "math"]
    assert all(i.scorer for i in math_items)
    assert {(i.scorer or {}).get("type") for i in suite.items} == {
        None,
        "numeric",
        "exact",
        "contains",
        "regex",
        "json",
    }  # None: judged by an LLM


def test_each_regex_or_json_scorer_accepts_its_own_reference_answer() -> None:
    for item in load_suite(ANSWER_SUITE).items:
        scorer = item.scorer or {}
        if scorer.get("type") == "regex":
            flags = re.IGNORECASE if scorer.get("ignore_case") else 0
            assert re.search(scorer["pattern"], item.expected_answer.strip(), flags), item.item_id
        if scorer.get("type") == "json":
            assert set(scorer["required_keys"]) <= set(json.loads(item.expected_answer))


def test_the_example_suites_and_the_configured_suites_load() -> None:
    suites = {suite.name: suite for suite in load_suites([REPO_ROOT / "golden_sets"])}
    assert set(suites) == {
        "intro-python",
        "general-qa",
        "sql-basics",
        "essay-feedback",
        "pairwise-qa",
        "pairwise-questions",
    }
    assert sum(item.responses is not None for item in suites["pairwise-qa"].items) == 12
    assert suites["pairwise-qa"].verdict_label("b") == "candidate"
    assert suites["essay-feedback"].item("essay-remote-03").expected_issue_tags == (
        "off_topic",
        "no_thesis",
    )
    assert suites["sql-basics"].item("sql-join-rows").expected_answer == "12"
    configured = suites_from_config(load_config(REPO_ROOT / "evalhouse.yaml"))
    assert set(configured) == {"intro-python", "general-qa"}


# --- versions ---------------------------------------------------------------------------------


def test_version_is_stable_and_changes_only_with_content(tmp_path: Path) -> None:
    path = write(tmp_path, "mini.yaml", VALID_YAML)
    first, again = load_suite(path), load_suite(path)
    assert first.version == again.version and len(first.version) == 16

    reordered = VALID_YAML.split("  - id: a1\n")
    items_a1, items_a2 = reordered[1].split("  - id: a2\n")
    swapped = reordered[0] + "  - id: a2\n" + items_a2 + "  - id: a1\n" + items_a1
    assert load_suite(write(tmp_path, "swapped.yaml", swapped)).version == first.version

    edited = load_suite(
        write(tmp_path, "edited.yaml", VALID_YAML.replace("sum(range(1, n))", "sum(range(n))"))
    )
    assert edited.version != first.version
    assert edited.item("a1").item_hash == first.item("a1").item_hash
    assert edited.item("a2").item_hash != first.item("a2").item_hash

    new_rubric = load_suite(
        write(tmp_path, "rubric.yaml", VALID_YAML.replace("Sum 1..n inclusive.", "Sum 1..n."))
    )
    assert new_rubric.version != first.version
    assert new_rubric.item("a1").rubric == "Sum 1..n."  # the effective rubric is hashed


def test_the_same_suite_in_yaml_jsonl_and_csv_has_the_same_version(tmp_path: Path) -> None:
    from_yaml = load_suite(write(tmp_path, "mini.yaml", VALID_YAML))
    header = {
        "name": "mini",
        "description": from_yaml.description,
        "kind": "grader",
        "verdicts": list(from_yaml.verdicts),
        "passing_verdicts": ["pass"],
        "issue_tags": list(from_yaml.issue_tags),
        "default_rubric": from_yaml.default_rubric,
    }
    rows = [
        {
            "id": i.item_id,
            "stage": i.stage,
            "submission": i.submission,
            "expected_verdict": i.expected_verdict,
            "expected_issue_tags": list(i.expected_issue_tags),
        }
        for i in from_yaml.items
    ]
    from_jsonl = load_suite(write(tmp_path, "mini.jsonl", jsonl(header, *rows)))
    assert from_jsonl.version == from_yaml.version

    import csv
    import io

    import yaml

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "stage", "submission", "expected_verdict", "expected_issue_tags"])
    for row in rows:
        writer.writerow(
            [
                row["id"],
                row["stage"],
                row["submission"],
                row["expected_verdict"],
                "|".join(row["expected_issue_tags"]),
            ]
        )
    write(tmp_path, "mini2.suite.yaml", yaml.safe_dump(header))
    from_csv = load_suite(write(tmp_path, "mini2.csv", buffer.getvalue()))
    assert from_csv.version == from_yaml.version
    assert from_csv.item("a2").line == 4  # row start line, multi-line cells counted


# --- the warehouse ----------------------------------------------------------------------------


def test_storing_a_suite_twice_writes_it_once(warehouse_url: str, tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, "mini.yaml", VALID_YAML))
    with psycopg.connect(warehouse_url) as conn:
        assert store_suite(conn, suite) is True
        loaded_at = conn.execute("select loaded_at from raw.golden_suites").fetchone()[0]
        assert store_suite(conn, suite) is False
        assert conn.execute("select loaded_at from raw.golden_suites").fetchone()[0] == loaded_at
    assert golden_row_counts(warehouse_url) == (1, 2)

    changed = load_suite(
        write(tmp_path, "mini.yaml", VALID_YAML.replace("range(1, n))", "range(0, n))"))
    )
    with psycopg.connect(warehouse_url) as conn:
        assert store_suite(conn, changed) is True
        versions = conn.execute(
            "select suite_version, item_count from raw.golden_suites order by loaded_at"
        ).fetchall()
        row = conn.execute(
            "select item_hash, stage, inputs, expected from raw.golden_items"
            " where suite_version = %s and item_id = 'a2'",
            (changed.version,),
        ).fetchone()
    assert versions == [(suite.version, 2), (changed.version, 2)]
    item = changed.item("a2")
    assert row == (item.item_hash, "loops", item.inputs(), item.expected())


def test_unicode_and_sql_looking_text_is_stored_verbatim(
    warehouse_url: str, tmp_path: Path
) -> None:
    hostile = "x = '); drop table raw.golden_items; --'  # naïve café ✓ 学生 \U0001f40d\n"
    header = {
        **VALID_JSONL_HEADER,
        "kind": "grader",
        "verdicts": ["pass", "fail"],
        "passing_verdicts": ["pass"],
    }
    path = write(
        tmp_path,
        "hostile.jsonl",
        jsonl(
            header,
            {
                "id": "h1",
                "submission": hostile,
                "expected_verdict": "pass",
                "metadata": {"note": "Ünïcödé"},
            },
        ),
    )
    suite = load_suite(path)
    with psycopg.connect(warehouse_url) as conn:
        store_suite(conn, suite)
        stored = conn.execute("select inputs from raw.golden_items").fetchone()[0]
    assert stored["submission"] == hostile and stored["metadata"] == {"note": "Ünïcödé"}


# --- the command line -------------------------------------------------------------------------


def test_validate_prints_name_kind_version_and_stage_counts() -> None:
    result = runner.invoke(app, ["golden", "validate", str(GRADER_SUITE), str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    suite = load_suite(GRADER_SUITE)
    assert f"intro-python (grader) version {suite.version}: {len(suite.items)} items" in (
        result.output
    )
    assert "variables 12" in result.output and "essay-feedback" in result.output


def test_validate_exits_2_on_a_missing_path_and_on_an_empty_folder(tmp_path: Path) -> None:
    assert runner.invoke(app, ["golden", "validate", str(tmp_path / "nope.yaml")]).exit_code == 2
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["golden", "validate", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no suite files" in result.output


def test_load_defaults_to_the_configured_suites_and_is_idempotent(
    warehouse_url: str, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "evalhouse.yaml",
        (REPO_ROOT / "evalhouse.yaml")
        .read_text()
        .replace("path: golden_sets/", f"path: {REPO_ROOT}/golden_sets/"),
    )
    first = runner.invoke(app, ["golden", "load"])
    assert first.exit_code == 0, first.output
    assert "2 new, 0 unchanged" in first.output
    counts = golden_row_counts(warehouse_url)
    expected_items = len(load_suite(GRADER_SUITE).items) + len(load_suite(ANSWER_SUITE).items)
    assert counts == (2, expected_items)

    second = runner.invoke(app, ["golden", "load"])
    assert second.exit_code == 0 and "0 new, 2 unchanged" in second.output
    assert golden_row_counts(warehouse_url) == counts


def test_yaml_yes_no_booleans_are_errors_with_a_hint_to_quote(tmp_path: Path) -> None:
    text = (
        "name: quiz\nkind: answer\nverdicts: [correct, incorrect]\n"
        "passing_verdicts: [correct]\ndefault_rubric: Compare.\nitems:\n"
        "  - id: q1\n    question: Is 7 odd?\n    expected_answer: yes\n"
    )
    with pytest.raises(GoldenSetError) as raised:
        load_suite(write(tmp_path, "bools.yaml", text))
    assert str(raised.value) == (
        f"{tmp_path / 'bools.yaml'}:9: item q1: expected_answer: must be a string, got the "
        "boolean true (quote the value to keep it text)"
    )


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(VALID_YAML.replace("Sum 1..n", "Somme 1..n, r\u00e9sultat").encode("latin-1"))
    with pytest.raises(GoldenSetError) as raised:
        load_suite(path)
    [issue] = raised.value.issues
    assert (issue.line, issue.field) == (line_of(VALID_YAML, "default_rubric"), "(file)")
    assert "not UTF-8 text" in issue.message


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shards_of_a_suite_split_its_items_by_hash_under_the_same_version(count: int) -> None:
    suite = suites_from_config(load_config(REPO_ROOT / "evalhouse.yaml"))["general-qa"]
    shards = [suite.shard(index, count) for index in range(count)]
    ids = [item.item_id for shard in shards for item in shard.items]
    assert sorted(ids) == sorted(item.item_id for item in suite.items)  # each item once
    assert {shard.version for shard in shards} == {suite.version}
    again = [item.item_id for item in suite.shard(0, count).items]
    assert again == [item.item_id for item in shards[0].items]  # deterministic
    with pytest.raises(ValueError, match="does not exist"):
        suite.shard(count, count)
