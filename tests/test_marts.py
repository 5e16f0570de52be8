"""Python readers of the marts: relation names from the dbt manifest, and each reader declared
as a dbt exposure whose depends_on is exactly the marts its query files name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from evals.marts import MartError, project_relations, read_relations, relation, render_query

EXPOSURES = REPO_ROOT / "dbt_project" / "models" / "exposures.yml"
MARTS = REPO_ROOT / "dbt_project" / "models" / "marts"
_REF = re.compile(r"ref\(\s*'(\w+)'\s*\)")


def _manifest(tmp_path: Path) -> Path:
    nodes = {
        "model.p.fct_a": {
            "resource_type": "model",
            "name": "fct_a",
            "schema": "marts",
            "alias": "fct_a",
        },
        "model.p.fct_b": {
            "resource_type": "model",
            "name": "fct_b",
            "schema": "bi",
            "alias": "b_v2",
        },
        "test.p.unique_fct_a": {
            "resource_type": "test",
            "name": "unique_fct_a",
            "schema": "marts",
            "alias": "unique_fct_a",
        },
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": nodes}))
    return path


def test_relations_come_from_the_manifest_with_schema_and_alias(tmp_path: Path):
    assert read_relations(_manifest(tmp_path)) == {
        "fct_a": '"marts"."fct_a"',
        "fct_b": '"bi"."b_v2"',
    }


def test_a_missing_manifest_or_an_unknown_model_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "nowhere" / "manifest.json"
    with pytest.raises(MartError, match=f"no dbt manifest at {re.escape(str(missing))}"):
        read_relations(missing)
    with pytest.raises(MartError, match="the dbt project has no model 'fct_c'"):
        relation("fct_c", read_relations(_manifest(tmp_path)))


def test_a_query_file_has_its_refs_resolved_and_its_includes_inlined(tmp_path: Path):
    (tmp_path / "_window.sql").write_text(
        "with w as (select max(d) as hi from {{ ref('fct_a') }})\n"
    )
    (tmp_path / "q.sql").write_text(
        "{% include '_window.sql' %}\nselect * from w, {{ ref('fct_b') }} where x = %(x)s\n"
    )
    assert render_query(tmp_path / "q.sql", read_relations(_manifest(tmp_path))) == (
        'with w as (select max(d) as hi from "marts"."fct_a")\n'
        'select * from w, "bi"."b_v2" where x = %(x)s\n'
    )


def test_the_project_resolves_its_marts_to_the_marts_schema():
    relations = project_relations()
    assert relation("fct_trend_daily") == '"marts"."fct_trend_daily"'
    assert relations["fct_eval_runs"] == '"marts"."fct_eval_runs"'


# --- exposures: the readers, declared --------------------------------------------------------


def _exposures() -> dict[str, dict]:
    return {e["name"]: e for e in yaml.safe_load(EXPOSURES.read_text())["exposures"]}


def _query_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql"))


def test_every_query_folder_of_the_code_is_an_exposure():
    folders = {
        path.parent.relative_to(REPO_ROOT).as_posix()
        for package in ("evals", "orchestration")
        for path in (REPO_ROOT / package).rglob("*.sql")
    }
    declared = {e["config"]["meta"]["queries"] for e in _exposures().values()}
    assert (
        folders
        == declared
        == {
            "evals/web/queries",
            "evals/web/api_queries",
            "evals/web/queries/batches",
            "orchestration/defs/drift/queries",
            "evals/cli/queries",
            "evals/web/queries/pairwise",
            "orchestration/defs/pairwise/queries",
        }
    )


@pytest.mark.parametrize(
    "name",
    [
        "web_overview",
        "web_api",
        "web_batches",
        "drift_checks",
        "demo_report",
        "web_pairwise",
        "pairwise_checks",
    ],
)
def test_an_exposure_depends_on_exactly_the_marts_its_queries_name(name: str):
    exposure = _exposures()[name]
    folder = REPO_ROOT / exposure["config"]["meta"]["queries"]
    named = {ref for path in _query_files(folder) for ref in _REF.findall(path.read_text())}
    declared = {ref for item in exposure["depends_on"] for ref in _REF.findall(item)}
    assert named == declared
    marts = {path.stem for path in MARTS.rglob("*.sql")}
    assert named <= marts  # readers stay on marts, never intermediate or staging models


def test_no_reader_names_a_dbt_relation_by_schema():
    """Schema-qualified names would bypass the manifest (and the exposures)."""
    relation_text = re.compile(r"(?<![\w.])(?:marts|staging|intermediate)\.[a-z_]+")
    sources = [
        path
        for package in ("evals", "orchestration")
        for path in (REPO_ROOT / package).rglob("*")
        if path.suffix in {".py", ".sql"}
    ]
    assert [
        (path.relative_to(REPO_ROOT).as_posix(), match)
        for path in sources
        for match in relation_text.findall(path.read_text())
    ] == []
