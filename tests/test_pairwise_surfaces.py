"""Pairwise judgments through dbt to the pages, the API and the judge-bias check: judgment rows
written per the pairwise contract with known verdicts, the pairwise marts built by `dbt run`
once for the module, then /runs/{id}, /leaderboard, /api/v1/pairwise/* asked over HTTP and held
to the rows and the marts, and the `pairwise_judge_bias` check run by Dagster against its
levels."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from conftest import REPO_ROOT, create_database, drop_database, role_url
from fastapi.testclient import TestClient
from pairwise_rows import judgment
from psycopg.types.json import Jsonb
from test_batch_views import row_of

from evals import api_tokens, drift, warehouse
from evals.config import Config, DriftConfig, load_config
from evals.dbt import dbt_env, run_dbt
from evals.runlog import RunRecord, write_runs
from evals.warehouse.roles import WEB_ROLE
from evals.web.app import create_app
from evals.web.db import WebDatabase

TOKEN = "test-pairwise-token-4c1f9e0a"
BEARER = {"authorization": f"Bearer {TOKEN}"}
SUITE, VERSION = "pq", "sv1"
S, L, M = "tutor-small", "tutor-large@v2", "tutor-mid"
T0 = datetime(2026, 11, 1, 2, tzinfo=UTC)
NIGHT = date(2026, 11, 2)
MARTS = (
    "+fct_pairwise_ratings",
    "+fct_pairwise_matrix",
    "+fct_pairwise_judge_bias",
    "+fct_eval_batches",  # the rest of /leaderboard
    "+fct_eval_batch_breakdown",
)
RESPONSE_IDS = (uuid.UUID(int=0xA), uuid.UUID(int=0xB))
X_LABEL = "pq@sv1 · judge judge-x@j1 · golden"


def _judge(item: str, pair: tuple[str, str], position: str, verdict: str | None, **extra):
    return judgment(
        item,
        suite=SUITE,
        suite_version=VERSION,
        judge=extra.pop("judge", "judge-x"),
        judge_prompt_version=extra.pop("judge_prompt_version", "j1"),
        contestants=pair,
        position=position,
        verdict=verdict,
        started_at=T0 + timedelta(seconds=extra.get("trial", 0)),
        stage="qa",
        **extra,
    )


def _both(item: str, pair: tuple[str, str], verdict: str, **extra) -> list[RunRecord]:
    return [_judge(item, pair, pos, verdict, **extra) for pos in ("ab", "ba")]


def _responses() -> list[RunRecord]:
    """The two generated answers p00's S-vs-L judgments link (ordinary candidate rows)."""
    return [
        RunRecord(
            idempotency_key=f"answer-{model}",
            source="golden",
            role="candidate",
            model=model.split("@")[0],
            prompt_version=model.partition("@")[2] or None,
            started_at=T0,
            status="ok",
            run_id=run_id,
            suite=SUITE,
            suite_version=VERSION,
            item_id="p00",
            output_text=text,
        )
        for model, run_id, text in (
            (S, RESPONSE_IDS[0], "SMALL ANSWER p00"),
            (L, RESPONSE_IDS[1], "LARGE ANSWER p00"),
        )
    ]


def plan() -> list[RunRecord]:
    """judge-x: S vs L (L preferred on 8 items, a tie, S on 1; p00 again in trial 1 with the
    verdict following the slot), M vs S (5 each), M vs L in one order only (L on 7 of 10).
    judge-slot: S vs L on 30 items, always the first slot (inconsistent everywhere)."""
    rows = _responses()
    for i in range(10):
        item = f"p{i:02d}"
        links = {"responses": RESPONSE_IDS} if i == 0 else {}
        rows += _both(item, (S, L), "b" if i < 8 else "tie" if i == 8 else "a", **links)
        inputs = {"question": "What is 2+2?", "response_a": "MID SAYS 4", "response_b": "5"}
        rows += [
            r if i != 1 else RunRecord(**{**r.to_dict(), "inputs": inputs})
            for r in _both(item, (M, S), "a" if i < 5 else "b")
        ]
        rows.append(_judge(item, (M, L), "ab", "b" if i < 7 else "a"))
    rows += [_judge("p00", (S, L), "ab", "a", trial=1), _judge("p00", (S, L), "ba", "b", trial=1)]
    for i in range(30):
        for pos, verdict in (("ab", "a"), ("ba", "b")):
            rows.append(
                _judge(
                    f"r{i:02d}", (S, L), pos, verdict, judge="judge-slot", judge_prompt_version="s1"
                )
            )
    return rows


def store_items(conn: psycopg.Connection) -> None:
    """The suite's ten items as raw.golden_items holds them; p02 keeps its two responses in its
    inputs (a pairwise item with stored responses)."""
    conn.execute(
        "insert into raw.golden_suites (suite, suite_version, kind, verdicts, passing_verdicts,"
        " item_count) values (%s, %s, 'answer', '{a,b,tie}', '{}', 10)",
        (SUITE, VERSION),
    )
    for i in range(10):
        inputs = {"question": f"Question {i}?"}
        if i == 2:
            inputs |= {"response_a": "MID STORED p02", "response_b": "SMALL STORED p02"}
        conn.execute(
            "insert into raw.golden_items (suite, suite_version, item_id, item_hash, inputs,"
            " expected) values (%s, %s, %s, %s, %s, '{}')",
            (SUITE, VERSION, f"p{i:02d}", f"h{i}", Jsonb(inputs)),
        )


@pytest.fixture(scope="module")
def built(pg_server, tmp_path_factory):
    name = create_database(pg_server)
    url = pg_server.url(name)
    home = tmp_path_factory.mktemp("pairwise")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warehouse.URL_ENV, url)
        rows = plan()
        with psycopg.connect(url) as conn:
            write_runs(conn, rows)
            store_items(conn)
            token = api_tokens.create_token(conn, "pairwise-bot")[1]
    env = dbt_env(url=url, config=Config(), target_path=home / "dbt_target")
    result = run_dbt(["run", "--quiet", "--select", *MARTS], env=env)
    assert result.success, result.exception
    try:
        yield {"url": url, "rows": rows, "api_token": token}
    finally:
        warehouse._engine_for(url).dispose()
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def client(pg_server, built):
    database = WebDatabase(role_url(pg_server, built["url"], WEB_ROLE))
    app = create_app(Config(), TOKEN, database=database)
    with TestClient(app, follow_redirects=False, headers=BEARER) as http:
        yield http


def mart(built, name: str) -> list[dict]:
    with psycopg.connect(built["url"]) as conn:
        cur = conn.execute(f"select * from marts.{name}")
        return [dict(zip([c.name for c in cur.description], r, strict=True)) for r in cur]


def run_of(built, item: str, pair: tuple[str, str], position: str, trial: int = 0) -> str:
    return str(
        next(
            r.run_id
            for r in built["rows"]
            if r.role == "judge"
            and r.item_id == item
            and r.model == "judge-x"
            and (r.attributes["contestant_a"], r.attributes["contestant_b"]) == pair
            and r.attributes["position"] == position
            and r.trial == trial
        )
    )


def block(page: str, marker: str, end: str = "</div>") -> str:
    start = page.index(marker)
    return page[start : page.index(end, start)]


# --- the run view -----------------------------------------------------------------------------


def test_a_judgment_shows_both_responses_and_every_order_and_trial_of_its_item(client, built):
    page = client.get(f"/runs/{run_of(built, 'p00', (S, L), 'ab')}").text
    side_a, side_b = block(page, 'data-side="A"'), block(page, 'data-side="B"')
    assert f"A · {S}" in side_a and "SMALL ANSWER p00" in side_a
    assert f"B · {L}" in side_b and "LARGE ANSWER p00" in side_b
    assert f'href="/runs/{RESPONSE_IDS[0]}"' in side_a
    assert f'href="/runs/{RESPONSE_IDS[1]}"' in side_b
    table = block(page, 'class="judgments"', "</table>")
    rows = re.findall(r'<tr data-trial="(\d)" data-position="(ab|ba)"', table)
    assert rows == [("0", "ab"), ("0", "ba"), ("1", "ab"), ("1", "ba")]
    expected = {
        ("0", "ab"): ("second", "b", L),
        ("0", "ba"): ("first", "b", L),
        ("1", "ab"): ("first", "a", S),
        ("1", "ba"): ("first", "b", L),
    }
    for (trial, position), (slot, verdict, preferred) in expected.items():
        row = row_of(table, "trial", f'{trial}" data-position="{position}')
        assert f"<td>{slot}</td>" in row
        assert f'<td class="verdict">{verdict}</td><td>{preferred}</td>' in row
    assert 'class="current"' in row_of(table, "trial", '0" data-position="ab')
    assert "this run" in row_of(table, "trial", '0" data-position="ab')
    assert f'href="/runs/{run_of(built, "p00", (S, L), "ba", 1)}"' in table
    assert re.search(r'data-trial="0">Trial 0: the same verdict in both orders', page)
    assert re.search(r'data-trial="1">Trial 1: <strong>different verdicts', page)


def test_stored_responses_come_from_what_the_judge_was_shown(client, built):
    page = client.get(f"/runs/{run_of(built, 'p01', (M, S), 'ba')}").text
    assert "What is 2+2?" in page
    assert "MID SAYS 4" in block(page, 'data-side="A"')
    assert "stored response of the item" in block(page, 'data-side="B"')
    assert len(re.findall(r'<tr data-trial="0" data-position', page)) == 2


def test_an_items_stored_responses_come_from_the_golden_item(client, built):
    page = client.get(f"/runs/{run_of(built, 'p02', (M, S), 'ab')}").text
    assert "Question 2?" in page
    assert "MID STORED p02" in block(page, 'data-side="A"')
    assert "SMALL STORED p02" in block(page, 'data-side="B"')
    assert "stored response of the item" in block(page, 'data-side="B"')


def test_a_run_that_is_not_a_judgment_has_no_pairwise_section(client):
    page = client.get(f"/runs/{RESPONSE_IDS[0]}").text
    assert "SMALL ANSWER p00" in page
    assert 'id="pairwise"' not in page


# --- the leaderboard and the API --------------------------------------------------------------


def test_the_leaderboard_shows_each_cohorts_ratings_and_matrix_from_the_marts(client, built):
    page = client.get("/leaderboard").text
    section = page[page.index('id="pairwise"') :]
    labels = re.findall(r'class="pairwise-cohort" data-cohort="([^"]+)"', section)
    assert labels == ["pq@sv1 · judge judge-slot@s1 · golden", X_LABEL]
    cohort = block(section, f'data-cohort="{X_LABEL}"', "</table>\n  </div>")
    ratings = sorted(
        (r for r in mart(built, "fct_pairwise_ratings") if r["judge_model"] == "judge-x"),
        key=lambda r: r["rank"],
    )
    assert [r["contestant"] for r in ratings] == [L, M, S]  # the order the verdicts imply
    shown = re.findall(r'<tr data-contestant="([^"]+)"><td class="num">(\d+)</td>', cohort)
    assert shown == [(r["contestant"], str(r["rank"])) for r in ratings]
    for r in ratings:
        row = row_of(cohort, "contestant", r["contestant"])
        assert f'<td class="num rating">{r["rating"]:+.0f}</td>' in row
        assert f"{r['rating_ci_low']:+.0f} … {r['rating_ci_high']:+.0f}" in row
        assert (
            f'<td class="num">{r["comparisons"]:,}</td><td class="num">{r["items"]:,}</td>' in row
        )
    matrix = cohort[cohort.index('class="pairwise-matrix"') :]
    cells = [c for c in mart(built, "fct_pairwise_matrix") if c["judge_model"] == "judge-x"]
    assert len(cells) == 6  # three pairs, both directions
    for c in cells:
        row = row_of(matrix, "contestant", c["contestant"])
        start = row.index(f'data-opponent="{c["opponent"]}"')
        cell = row[start : row.index("</td>", start)]
        assert f">{100 * c['win_rate']:.1f} %" in cell
        counts = f"{c['wins']} won, {c['ties']} tied, {c['losses']} lost on 10 items"
        assert f"{counts} (coverage 100.0 %)" in cell
        assert (c["items"], c["coverage"]) == (10, 1.0)  # every item of the suite, each pair
    diagonal = row_of(matrix, "contestant", L)
    assert f'<td class="heat muted" data-opponent="{L}">–</td>' in diagonal


def test_the_api_answers_the_same_ratings_and_matrix_with_their_cohort(client, built):
    bearer = {"authorization": f"Bearer {built['api_token']}"}
    body = client.get("/api/v1/pairwise/ratings", headers=bearer).json()
    ratings = mart(built, "fct_pairwise_ratings")
    assert len(body["rows"]) == len(ratings) == 3 + 2
    by_key = {(r["judge_model"], r["contestant"]): r for r in ratings}
    for row in body["rows"]:
        expected = by_key[(row["judge_model"], row["contestant"])]
        assert row["rating"] == pytest.approx(expected["rating"])
        assert (row["rating_ci_low"], row["rating_ci_high"]) == pytest.approx(
            (expected["rating_ci_low"], expected["rating_ci_high"])
        )
        assert (row["rank"], row["items"]) == (expected["rank"], expected["items"])
    assert {r["cohort"] for r in body["rows"]} == {X_LABEL, "pq@sv1 · judge judge-slot@s1 · golden"}
    only = client.get("/api/v1/pairwise/matrix?judge=judge-slot", headers=bearer).json()["rows"]
    assert {(r["contestant"], r["opponent"], r["items"]) for r in only} == {(S, L, 30), (L, S, 30)}
    matrix = mart(built, "fct_pairwise_matrix")
    cells = {(c["judge_model"], c["contestant"], c["opponent"]): c for c in matrix}
    for row in only:
        cell = cells[("judge-slot", row["contestant"], row["opponent"])]
        assert (row["wins"], row["ties"], row["losses"]) == (
            cell["wins"],
            cell["ties"],
            cell["losses"],
        )
        assert row["win_rate"] == pytest.approx(cell["win_rate"]) == pytest.approx(0.5)
    assert client.get("/api/v1/pairwise/matrix?suite=nothing", headers=bearer).json() == {
        "rows": []
    }


# --- the judge-bias check ---------------------------------------------------------------------


def test_the_detector_needs_the_interval_past_the_level_and_enough_pairs(built):
    rows = mart(built, "fct_pairwise_judge_bias")
    found = drift.detect_judge_bias(rows, DriftConfig(), as_of=NIGHT)
    assert {(f.kind, f.subject) for f in found} == {
        ("judge_inconsistency", "judge=judge-slot prompt=s1 suite=pq@sv1 source=golden"),
        ("judge_position_bias", "judge=judge-slot prompt=s1 suite=pq@sv1 source=golden"),
    }
    bias = next(f for f in found if f.kind == "judge_position_bias")
    assert bias.observed == 1.0 and bias.expected_high == 0.75
    assert bias.evidence["pairs_both_orders"] == 30
    assert drift.detect_judge_bias(rows, DriftConfig(pairwise_min_pairs=31), as_of=NIGHT) == []
    few = DriftConfig(pairwise_min_inconsistent_pairs=31)  # judge-slot has 30
    assert [f.kind for f in drift.detect_judge_bias(rows, few, as_of=NIGHT)] == [
        "judge_inconsistency"
    ]
    lenient = DriftConfig(pairwise_max_position_bias=0.95, pairwise_max_inconsistency=0.95)
    assert drift.detect_judge_bias(rows, lenient, as_of=NIGHT) == []


def test_the_check_alerts_once_per_biased_judge_cohort_with_its_judgments(built):
    from orchestration.defs.pairwise.checks import judge_bias_check
    from orchestration.defs.warehouse import build_defs, warehouse_dbt_assets
    from orchestration.lib.resources import Evalhouse
    from orchestration.project import dbt_project

    shipped = load_config(REPO_ROOT / "evalhouse.yaml")
    project = dbt_project(shipped)
    warehouse_dbt = warehouse_dbt_assets(shipped, project)
    check = judge_bias_check(warehouse_dbt)
    resources = {"evalhouse": Evalhouse(shipped), **build_defs(warehouse_dbt, project).resources}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warehouse.URL_ENV, built["url"])
        for _ in range(2):  # the same night again renews the alerts, it adds none
            result = dg.materialize(
                [warehouse_dbt, check],
                resources=resources,
                selection=dg.AssetSelection.checks(check),
                tags={"dagster/partition": NIGHT.isoformat()},
            )
            [evaluation] = result.get_asset_check_evaluations()
            assert not evaluation.passed
            assert evaluation.metadata["cohorts"].value == 2
    with psycopg.connect(built["url"]) as conn:
        alerts = conn.execute(
            "select kind, subject, array_length(example_run_ids, 1), window_start"
            " from raw.alerts order by kind"
        ).fetchall()
        examples = conn.execute(
            "select distinct r.model from raw.alerts a"
            " join raw.eval_runs r on r.run_id = any(a.example_run_ids)"
        ).fetchall()
    subject = "judge=judge-slot prompt=s1 suite=pq@sv1 source=golden"
    night = datetime(2026, 11, 2, tzinfo=UTC)
    assert alerts == [
        ("judge_inconsistency", subject, 3, night),
        ("judge_position_bias", subject, 3, night),
    ]
    assert examples == [("judge-slot",)]
