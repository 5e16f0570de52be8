"""`evalhouse import` under bad input, misspelled mappings and corrections (`--replace`).

Each test replays a probe of issue 14: a bad value is reported as FILE:LINE and the rest of the
file lands; a misspelled source path is an error; a corrected import supersedes the old rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import REPO_ROOT
from psycopg.rows import dict_row
from typer.testing import CliRunner

from evals.cli import app
from evals.importers import MappingError, import_file, load_mapping

EXAMPLES = REPO_ROOT / "docs" / "examples"
MAPPING = {
    "format": "jsonl",
    "suite": "pairwise-qa",
    "vocabulary": {"verdicts": ["1", "2", "tie"], "passing": ["1"]},
    "role": "judge",
    "fields": {
        "item_id": "item",
        "model": "judge",
        "verdict": "says",
        "started_at": "at",
        "input_tokens": "tokens",
        "cost_usd": "cost",
        "latency_ms": "latency",
        "output_text": "text",
        "attributes.position": "labels.0",
    },
    "reviews": [{"reviewer": "ana", "verdict": "label_ana"}],
}


def _line(i: int, **changes) -> str:
    record = {
        "item": f"item-{i}",
        "judge": "judge-v2",
        "says": "1",
        "at": "2026-10-03T09:00:00Z",
        "tokens": 10,
        "cost": 0.001,
        "latency": 12.5,
        "text": "fine",
        "labels": ["AB", "x"],
        "label_ana": "1",
        **changes,
    }
    return json.dumps(record)


@pytest.fixture
def conn(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def _mapping(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({**MAPPING, **changes}))
    return path


def _rows(conn, where: str = "true") -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select * from raw.eval_runs where {where} order by item_id").fetchall()


def test_values_the_run_log_cannot_hold_are_reported_by_line_and_the_rest_lands(
    conn, tmp_path: Path
):
    source = tmp_path / "judgments.jsonl"
    lines = [
        _line(1),
        _line(2, text="nul \u0000 here"),  # line 2
        _line(3, text="half an emoji \ud83d"),  # line 3
        _line(4, tokens=3e9),  # line 4
        _line(5, at=1e20),  # line 5
        _line(6, cost=float("nan")),  # line 6: NaN
        _line(7, latency=float("inf")),  # line 7: Infinity
        _line(8, at="9999-12-31T00:00:00Z"),  # line 8
        _line(9, text="مرحبا e\u0301 👍"),  # RTL, a combining mark, an emoji: stored verbatim
        _line(10, tokens=10**400),  # line 10: a number beyond a float
        _line(11, at=10**400),  # line 11: an epoch beyond a float
    ]
    source.write_bytes(
        "\n".join(lines).encode()
        + b'\n{"item": "item-12", "judge": "judge-v2", "says": "1", "text": "\xff\xfe"}\n'
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["import", str(source), "--mapping", str(_mapping(tmp_path))], terminal_width=240
    )
    assert result.exit_code == 1, result.output
    assert "12 records read, 2 rows imported" in result.output
    cannot = "text Postgres cannot store (a NUL, an unpaired surrogate or non-UTF-8 bytes)"
    expected = {
        2: f"output_text: {cannot}",
        3: f"output_text: {cannot}",
        4: "input_tokens: 3000000000.0 is beyond 2147483647",
        5: "started_at: 1e+20 is not a timestamp",
        6: "cost_usd: nan is not a finite number",
        7: "latency_ms: inf is not a finite number",
        8: "started_at: 9999-12-31T00:00:00+00:00 is outside 2000-01-01 .. now + 1 day",
        12: f"output_text: {cannot}",
    }
    for line, reason in expected.items():
        assert f"judgments.jsonl:{line}: {reason}" in result.output
    assert "judgments.jsonl:10: input_tokens:" in result.output
    assert "judgments.jsonl:11: started_at:" in result.output
    assert "Traceback" not in result.output
    rows = _rows(conn)
    assert [row["item_id"] for row in rows] == ["item-1", "item-9"]
    assert rows[1]["output_text"] == "مرحبا e\u0301 👍"
    assert rows[0]["attributes"]["position"] == "AB"  # labels.0: list indexing


def test_a_misspelled_source_path_is_an_error_unless_allowed(conn, tmp_path: Path):
    source = tmp_path / "judgments.jsonl"
    source.write_text(_line(1) + "\n" + _line(2) + "\n")
    fields = {**MAPPING["fields"], "item_id": "itemid"}
    mapping = _mapping(tmp_path, fields=fields)
    runner = CliRunner()
    refused = runner.invoke(app, ["import", str(source), "--mapping", str(mapping)])
    assert refused.exit_code == 2
    assert (
        "fields.item_id: source path 'itemid' matches nothing in any of the 2 records"
        in refused.output
    )
    assert "--allow-missing item_id" in refused.output
    assert _rows(conn) == []

    allowed = runner.invoke(
        app, ["import", str(source), "--mapping", str(mapping), "--allow-missing", "item_id"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "warning: item_id: its source path matches no record (allowed)" in allowed.output
    assert [row["item_id"] for row in _rows(conn)] == [None, None]


def test_a_null_everywhere_is_no_misspelling(conn, tmp_path: Path):
    source = tmp_path / "judgments.jsonl"
    source.write_text(_line(1, text=None) + "\n")
    report = import_file(conn, source, load_mapping(_mapping(tmp_path)))
    assert (report.imported, report.issues, report.missing_allowed) == (1, [], [])


def test_a_misspelled_review_field_is_named_too(conn, tmp_path: Path):
    source = tmp_path / "judgments.jsonl"
    source.write_text(_line(1) + "\n")
    mapping = _mapping(tmp_path, reviews=[{"reviewer": "ana", "verdict": "label_anna"}])
    with pytest.raises(MappingError, match=r"reviews\.0\.verdict: source path 'label_anna'"):
        import_file(conn, source, load_mapping(mapping))


def test_replace_supersedes_the_earlier_import_and_keeps_it(conn, tmp_path: Path):
    source = tmp_path / "judgments.jsonl"
    source.write_text("".join(_line(i, label_ana="2") + "\n" for i in range(3)))
    wrong = load_mapping(_mapping(tmp_path, fields={**MAPPING["fields"], "item_id": "itemid"}))
    first = import_file(conn, source, wrong, allow_missing=["item_id"])
    assert (first.imported, first.missing_allowed, first.reviews_stored) == (3, ["item_id"], 3)
    old_ids = {row["run_id"] for row in _rows(conn)}

    right = load_mapping(_mapping(tmp_path))
    again = import_file(conn, source, right)  # without --replace the same records are present
    assert (again.imported, again.already_present) == (0, 3)

    replaced = import_file(conn, source, right, replace=True)
    assert (replaced.superseded, replaced.imported, replaced.reviews_stored) == (3, 3, 3)
    live = _rows(conn, "superseded_at is null")
    assert [row["item_id"] for row in live] == ["item-0", "item-1", "item-2"]
    assert {row["run_id"] for row in live}.isdisjoint(old_ids)
    superseded = _rows(conn, "superseded_at is not null")
    assert {row["run_id"] for row in superseded} == old_ids  # kept, never deleted
    # The corrected rows settle under the keys the superseded rows held.
    assert {row["idempotency_key"] for row in live} == {
        row["idempotency_key"] for row in superseded
    }
    with conn.cursor() as cur:
        labelled = cur.execute(
            "select count(*) from raw.human_reviews where run_id = any(%s)",
            ([row["run_id"] for row in live],),
        ).fetchone()
    assert labelled == (3,)

    twice = import_file(conn, source, right, replace=True)
    assert (twice.superseded, twice.imported, twice.already_present) == (0, 0, 3)
    assert len(_rows(conn)) == 6


def test_the_cli_replaces_an_import(conn, tmp_path: Path):
    source = tmp_path / "judgments.jsonl"
    source.write_text(_line(1) + "\n")
    mapping = _mapping(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(source), "--mapping", str(mapping)]).exit_code == 0
    result = runner.invoke(app, ["import", str(source), "--mapping", str(mapping), "--replace"])
    assert result.exit_code == 0, result.output
    assert "1 rows of earlier imports superseded (kept in raw)" in result.output
    assert "1 rows imported" in result.output
    assert len(_rows(conn, "superseded_at is null")) == 1
    assert len(_rows(conn, "superseded_at is not null")) == 1


def test_a_record_the_warehouse_refuses_is_reported_and_the_rest_lands(conn, tmp_path: Path):
    # A rule of the operator's own that the importer knows nothing about.
    conn.execute("alter table raw.eval_runs add constraint no_probe check (item_id <> 'item-2')")
    source = tmp_path / "judgments.jsonl"
    source.write_text("".join(_line(i) + "\n" for i in range(1, 4)))
    report = import_file(conn, source, load_mapping(_mapping(tmp_path)))
    assert (report.read, report.imported, report.already_present) == (3, 2, 0)
    ((line, message),) = [(issue.line, issue.message) for issue in report.issues]
    assert line == 2 and message.startswith("refused by the warehouse: CheckViolation")
    assert [row["item_id"] for row in _rows(conn)] == ["item-1", "item-3"]
    assert report.reviews_stored == 2  # the refused record's label is not stored either


def test_the_marts_count_the_replacement_not_the_superseded_rows(
    conn, tmp_path: Path, warehouse_url: str
):
    from evals.config import Config
    from evals.dbt import dbt_env, run_dbt

    env = dbt_env(url=warehouse_url, config=Config(), target_path=tmp_path / "dbt_target")
    models = ["run", "--select", "stg_raw__eval_runs int_eval_runs fct_eval_runs"]
    source = tmp_path / "judgments.jsonl"
    source.write_text("".join(_line(i) + "\n" for i in range(3)))
    wrong = load_mapping(_mapping(tmp_path, fields={**MAPPING["fields"], "item_id": "itemid"}))
    import_file(conn, source, wrong, allow_missing=["item_id"])
    assert run_dbt(models, env=env).success

    import_file(conn, source, load_mapping(_mapping(tmp_path)), replace=True)
    assert run_dbt(models, env=env).success  # incremental: the superseded rows leave
    with conn.cursor() as cur:
        items = cur.execute("select item_id from marts.fct_eval_runs order by item_id").fetchall()
        raw = cur.execute("select count(*) from raw.eval_runs").fetchone()
    assert items == [("item-0",), ("item-1",), ("item-2",)] and raw == (6,)
