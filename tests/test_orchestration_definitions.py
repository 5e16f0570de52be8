"""The code location as a whole: its graph (a snapshot), built from one config, loadable by
Dagster's own tools on a fresh checkout, the nightly schedule's ticks, and `dagster dev` really
serving it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import REPO_ROOT

_SAVED_CONFIG = os.environ.get("EVALHOUSE_CONFIG")
os.environ["EVALHOUSE_CONFIG"] = str(REPO_ROOT / "evalhouse.yaml")

from orchestration.definitions import build_definitions, defs  # noqa: E402

if _SAVED_CONFIG is None:
    del os.environ["EVALHOUSE_CONFIG"]
else:
    os.environ["EVALHOUSE_CONFIG"] = _SAVED_CONFIG

PYTHON_ASSETS = {  # asset -> its checks and its kinds
    "golden_sets": (set(), {"yaml", "postgres"}),
    "golden_runs/tutor_small": ({"run_log_quality"}, {"litellm", "postgres"}),
    "golden_runs/tutor_large": ({"run_log_quality"}, {"litellm", "postgres"}),
    "production_runs": ({"run_log_quality"}, {"postgres"}),
    "production_samples": (set(), {"postgres", "litellm"}),
    "human_reviews": (set(), {"postgres"}),
    "release_gate": ({"release_gate_passes"}, {"python", "postgres"}),
    "rejudge": (set(), {"postgres", "litellm"}),
    "pairwise_comparison": (set(), {"litellm", "postgres"}),
}
MARTS = {
    "fct_eval_runs",
    "fct_stage_daily",
    "fct_trend_daily",
    "fct_issue_distribution_daily",
    "fct_model_cost_daily",
    "fct_verdict_agreement_weekly",
    "fct_judge_consistency",
    "fct_leaderboard",
    "fct_alerts",
    "fct_production_estimate_daily",
    "fct_agreement_by_order_weekly",
}
MART_CHECKS = {  # the drift checks and the pairwise judge-bias check
    ("marts/fct_pairwise_judge_bias", "pairwise_judge_bias"),
    ("marts/fct_stage_daily", "stage_pass_rate_drift"),
    ("marts/fct_stage_daily", "version_change_effect"),
    ("marts/fct_verdict_agreement_weekly", "judge_agreement_drift"),
    ("marts/fct_verdict_agreement_weekly", "agreement_version_change_effect"),
    ("marts/fct_golden_outcomes", "golden_accuracy_regression"),
    ("marts/fct_golden_outcomes", "golden_version_change_effect"),
    ("marts/fct_model_cost_daily", "cost_spike"),
    ("marts/fct_model_cost_daily", "cost_version_change_effect"),
    ("marts/fct_trend_daily", "latency_spike"),
    ("marts/fct_trend_daily", "latency_version_change_effect"),
}


SNAPSHOT = Path(__file__).with_name("snapshots") / "code_location.json"
UPDATE_SNAPSHOTS = "EVALHOUSE_UPDATE_SNAPSHOTS"


def _graph():
    return defs.get_repository_def().asset_graph


def _shape(definitions: dg.Definitions) -> dict:
    """What the snapshot holds: every asset (group, upstream keys, partitioning, checks), job
    and its steps, schedule and sensor — the graph, not descriptions or metadata."""
    repository = definitions.get_repository_def()
    graph = repository.asset_graph
    checks: dict[str, list[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assets[name] = {
            "group": node.group_name,
            "kind": "materializable"
            if node.is_materializable
            else "observable"
            if node.is_observable
            else "external",
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "checks": sorted(checks.get(name, [])),
        }
    jobs = {
        job.name: sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")
    }
    steps = {  # ops, nested in graph-backed assets (the golden runs' slices) as graph.op
        job.name: sorted(str(handle) for handle in job.graph.iterate_node_handles())
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")
    }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "status": schedule.default_status.value,
        }
        for schedule in definitions.schedules
    }
    sensors = {
        sensor.name: {"type": type(sensor).__name__, "status": sensor.default_status.value}
        for sensor in definitions.sensors
    }
    return {
        "assets": dict(sorted(assets.items())),
        "jobs": jobs,
        "steps": steps,
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
    }


def test_the_code_location_matches_its_snapshot():
    """The graph of the shipped evalhouse.yaml and dbt project, against tests/snapshots/
    code_location.json. A change to the graph fails here until the snapshot is rewritten on
    purpose and reviewed in the diff:

        EVALHOUSE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest \
            tests/test_orchestration_definitions.py -k snapshot
    """
    shape = _shape(defs)
    if os.environ.get(UPDATE_SNAPSHOTS):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(shape, indent=1, sort_keys=False) + "\n")
    assert shape == json.loads(SNAPSHOT.read_text()), (
        f"the code location's graph changed; if on purpose, rerun with {UPDATE_SNAPSHOTS}=1 "
        "and review the diff of the snapshot"
    )


def test_the_graph_and_its_resource_come_from_the_one_config_they_are_built_from():
    shipped = defs.resources["evalhouse"].config
    models = {**shipped.models, "tutor-xl": shipped.models["tutor-large"]}
    drift = shipped.drift.model_copy(update={"schedule": "15 3 * * *"})
    config = shipped.model_copy(update={"models": models, "drift": drift})

    built = build_definitions(config)

    graph = built.get_repository_def().asset_graph
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"golden_runs/tutor_small", "golden_runs/tutor_large", "golden_runs/tutor_xl"} <= keys
    staging = graph.get(dg.AssetKey(["staging", "stg_raw__eval_runs"]))
    assert dg.AssetKey(["golden_runs", "tutor_xl"]) in staging.parent_keys
    assert built.resolve_schedule_def("nightly_drift_schedule").cron_schedule == "15 3 * * *"
    assert built.resources["evalhouse"].config is config


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_dagster_validates_the_code_location_on_a_fresh_checkout(tmp_path: Path):
    """`dagster definitions validate -w workspace.yaml` on a copy of the repository without any
    dbt artifacts (loading the code location parses the dbt project itself), then `dg check
    defs` on the same copy."""
    checkout = tmp_path / "checkout"
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (REPO_ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            (checkout / name).write_bytes((REPO_ROOT / name).read_bytes())
    assert not (checkout / "dbt_project" / "target").exists()
    env = {key: value for key, value in os.environ.items() if key != "EVALHOUSE_CONFIG"}
    bin_dir = Path(sys.executable).parent
    env.update(
        PYTHONPATH=str(checkout),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        EVALHOUSE_HOME=str(tmp_path / "home"),
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
    )
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    def run(*command: str) -> str:
        done = subprocess.run(
            [str(bin_dir / command[0]), *command[1:]],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    validated = run("dagster", "definitions", "validate", "-w", "workspace.yaml")
    assert "Validation successful for code location evalhouse" in validated
    assert (checkout / "dbt_project" / "target" / "parsed" / "manifest.json").exists()
    assert "All definitions loaded successfully" in run("dg", "check", "defs")


def test_the_code_location_loads_as_dagster_dev_would_load_it():
    dg.Definitions.validate_loadable(defs)


def test_the_code_location_has_every_asset_check_job_schedule_and_sensor():
    graph = _graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks: dict[str, set[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), set()).add(check.name)

    for asset, (expected_checks, _) in PYTHON_ASSETS.items():
        assert asset in keys
        assert checks.get(asset, set()) == expected_checks
    assert {f"marts/{mart}" for mart in MARTS} <= keys
    for mart, check in MART_CHECKS:
        assert check in checks[mart]
    dbt_tests = sum(
        len(names)
        for key, names in checks.items()
        if key.startswith(("marts/", "intermediate/", "staging/"))
    )
    assert dbt_tests > 50, "dbt tests are asset checks"

    job = defs.resolve_job_def("nightly_drift")
    assert isinstance(job.partitions_def, dg.DailyPartitionsDefinition)
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    hand_run = {"release_gate", "rejudge", "human_reviews"}  # and raw/*: dbt's source tables
    assert selected == {key for key in keys if not key.startswith("raw/")} - hand_run

    schedule = defs.resolve_schedule_def("nightly_drift_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert {s.name for s in defs.schedules} == {
        "nightly_drift_schedule",
        "observe_human_reviews_schedule",
    }
    assert {sensor.name for sensor in defs.sensors} == {"alert_delivery", "run_failure_alerts"}


def test_every_python_asset_says_what_it_is_and_where_it_lives():
    graph = _graph()
    for asset, (_, kinds) in PYTHON_ASSETS.items():
        node = graph.get(dg.AssetKey.from_user_string(asset))
        assert node.description and len(node.description) > 40, asset
        assert node.kinds == kinds, asset
        assert node.group_name in {
            "golden",
            "production",
            "reviews",
            "release",
            "rejudge",
            "pairwise",
        }, asset


def test_every_daily_asset_shares_one_partitioning_with_single_run_backfills():
    graph = _graph()
    daily = [
        graph.get(dg.AssetKey.from_user_string(k))
        for k in (
            "production_runs",
            "production_samples",
            "golden_runs/tutor_small",
            "golden_runs/tutor_large",
            "rejudge",
        )
    ]
    assert len({node.partitions_def for node in daily}) == 1
    assert all(node.backfill_policy == dg.BackfillPolicy.single_run() for node in daily)


def test_the_nightly_schedule_targets_the_day_that_just_ended():
    schedule = defs.resolve_schedule_def("nightly_drift_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-21"
    assert request.run_key == "nightly:2026-11-21"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_evalhouse_dev_serves_every_asset_over_graphql_and_stops_cleanly(
    warehouse_url, tmp_path: Path
):
    """`evalhouse dev` (make dev): Postgres instance storage, the UI answers, SIGTERM stops it."""
    port = _free_port()
    env = {
        **os.environ,
        "EVALHOUSE_CONFIG": str(REPO_ROOT / "evalhouse.yaml"),
        "EVALHOUSE_HOME": str(tmp_path / "home"),
    }
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("evalhouse")), "dev", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180  # ~30 s on an idle 2-core machine, ~60 s under load
        assets: list[str] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            try:
                answer = _graphql(port, "{ assetNodes { assetKey { path } } }")
            except OSError:
                time.sleep(0.2)
                continue
            assets = ["/".join(node["assetKey"]["path"]) for node in answer["data"]["assetNodes"]]
            if assets:
                break
            time.sleep(0.2)
        assert set(PYTHON_ASSETS) <= set(assets), assets
        assert {f"marts/{mart}" for mart in MARTS} <= set(assets)
        dagster_yaml = (tmp_path / "home" / "dagster_home" / "dagster.yaml").read_text()
        assert "postgresql+psycopg2://" in dagster_yaml and "enabled: false" in dagster_yaml
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        log.close()
    assert _group_empty_within(process.pid, seconds=20), "dagster dev left processes behind"


def _group_empty_within(group: int, seconds: float) -> bool:
    """Child servers exit on their own once their parent is gone (heartbeat); wait for that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-o", "pid=", "-g", str(group)], capture_output=True, text=True)
        if not ps.stdout.strip():
            return True
        time.sleep(0.1)
    return False
