"""The production configuration files of docs/deploy/ hold what can be checked here: they parse,
dagster.yaml's keys and each configured class's settings are valid for the installed Dagster,
the Helm values say the same as dagster.yaml, and every secret evalhouse.yaml names is in the
Kubernetes Secret. The executor switch selects the executors the deploy guide names."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config

from evals.config import Config, load_config
from orchestration.lib import environment
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "docs" / "deploy"


def _yaml(name: str) -> list:
    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


@pytest.fixture
def instance_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables dagster.yaml reads (`env:`), as the Secret would set them."""
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")


def test_every_deploy_file_is_yaml():
    names = sorted(path.name for path in DEPLOY.iterdir())
    assert names == [
        "dagster.yaml",
        "evalhouse.yaml",
        "secrets.yaml",
        "values.yaml",
        "workspace.yaml",
    ]
    for name in names:
        assert all(document for document in _yaml(name)), name


def test_dagster_yaml_is_valid_for_the_installed_dagster_and_its_classes(instance_env):
    config, _ = dagster_instance_config(str(DEPLOY))  # the instance schema: unknown keys fail
    assert set(config) >= {"storage", "run_coordinator", "run_launcher", "run_monitoring"}
    # Dagster maps the QueuedRunCoordinator to its own class whatever module the file names
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    queue = process_config(
        dg.QueuedRunCoordinator.config_type(), config["run_coordinator"]["config"]
    )
    assert queue.success, queue.errors
    launcher = config["run_launcher"]
    klass = getattr(importlib.import_module(launcher["module"]), launcher["class"])
    checked = process_config(klass.config_type(), launcher["config"])
    assert checked.success, checked.errors
    from dagster_postgres import DagsterPostgresStorage

    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_a_misspelt_key_in_dagster_yaml_would_fail_that_check(tmp_path, instance_env):
    text = (DEPLOY / "dagster.yaml").read_text().replace("run_monitoring:", "run_monitor:")
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(dg.DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_the_helm_values_say_what_dagster_yaml_says():
    [instance] = _yaml("dagster.yaml")
    [values] = _yaml("values.yaml")
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert (
        queue["maxConcurrentRuns"] == instance["run_coordinator"]["config"]["max_concurrent_runs"]
    )
    assert (
        queue["tagConcurrencyLimits"]
        == instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    )
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == instance["run_launcher"]["class"]
    assert launcher["jobNamespace"] == instance["run_launcher"]["config"]["job_namespace"]
    assert [s["name"] for s in launcher["envSecrets"]] == instance["run_launcher"]["config"][
        "env_secrets"
    ]
    database = instance["storage"]["postgres"]["postgres_db"]
    assert values["postgresql"]["postgresqlScheme"] == database["scheme"]
    assert values["postgresql"]["postgresqlDatabase"] == database["db_name"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    assert deployment["env"][environment.EXECUTOR_ENV] == "k8s"


def test_every_secret_evalhouse_yaml_names_is_in_the_kubernetes_secret():
    config = load_config(DEPLOY / "evalhouse.yaml")
    secret = next(
        doc for doc in _yaml("secrets.yaml") if doc["metadata"]["name"] == "evalhouse-secrets"
    )
    named = {model.api_key_env for model in config.models.values()}
    named |= {hook.url_env for hook in config.alerts.webhooks}
    named |= {config.warehouse.url_env, config.web.token_env}
    assert named <= set(secret["stringData"])
    [values] = _yaml("values.yaml")
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert {s["name"] for s in deployment["envSecrets"]} == {"evalhouse-secrets"}


@pytest.mark.parametrize(
    ("name", "executor"),
    [
        ("in_process", "in_process"),
        ("multiprocess", "multiprocess"),
        ("dask", "dask"),
        ("k8s", "k8s"),
    ],
)
def test_the_executor_switch_selects_each_executor_the_guide_names(monkeypatch, name, executor):
    monkeypatch.setenv(environment.EXECUTOR_ENV, name)
    assert environment.executor().name == executor


@pytest.mark.parametrize(
    ("name", "shared_limits"),
    [
        ("in_process", "run"),
        ("multiprocess", "warehouse"),
        ("dask", "warehouse"),
        ("k8s", "warehouse"),
    ],
)
def test_steps_side_by_side_share_the_models_limits_through_the_warehouse(
    monkeypatch, name, shared_limits
):
    monkeypatch.setenv(environment.EXECUTOR_ENV, name)
    config = Config()
    assert environment.step_config(config).shared_limits == shared_limits
    assert config.shared_limits == "run"


def test_an_unknown_executor_is_refused_rather_than_run_in_process(monkeypatch):
    monkeypatch.setenv(environment.EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="in_process, multiprocess, dask, k8s"):
        environment.executor()
