"""Running the dbt project against the warehouse.

dbt reads its connection and settings from environment variables (dbt_project/profiles.yml and
macros/settings.sql), so one function, `dbt_env()`, derives them all: the connection from
`evals.warehouse.database_url()` (a libpq URL whose host may be a Unix-socket directory in the
query string), the marts' settings from evalhouse.yaml, and the offline defaults. `evalhouse dbt`
and the Dagster dbt resource both use it, so they build the same marts in the same warehouse.
`ensure_manifest()` keeps one parsed manifest current for whoever reads the project's graph
(the Dagster code location, and `evals.marts` for the Python readers of the marts).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from evals.offline import OFFLINE_ENV

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

    from evals.config import Config

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
PARSE_TARGET = DBT_PROJECT_DIR / "target" / "parsed"
"""Where `ensure_manifest` keeps the manifest Python reads (the Dagster code location's graph,
`evals.marts`' relation names): apart from dbt_project/target, so `evalhouse dbt` runs, which
render the profile with the real connection, neither race with it nor lose their partial parse."""
BI_ROLE = "evalhouse_bi"
_PARSE_URL = "postgresql://postgres@localhost/evalhouse"
"""`dbt parse` renders profiles.yml but never connects: any well-formed URL will do."""

# libpq keyword -> profiles.yml variable
_CONNECTION_VARS = {
    "host": "EVALHOUSE_DBT_HOST",
    "port": "EVALHOUSE_DBT_PORT",
    "user": "EVALHOUSE_DBT_USER",
    "password": "EVALHOUSE_DBT_PASSWORD",
    "dbname": "EVALHOUSE_DBT_DBNAME",
}
_LIBPQ_DEFAULTS = {"host": "localhost", "port": "5432", "user": "postgres", "password": ""}


def connection_env(url: str) -> dict[str, str]:
    """profiles.yml variables for a libpq URL (`?host=/socket/dir&port=…` included)."""
    from psycopg.conninfo import conninfo_to_dict

    from evals.warehouse import libpq_url

    params = {key: str(value) for key, value in conninfo_to_dict(libpq_url(url)).items()}
    params.setdefault("dbname", params.get("user", "postgres"))
    return {
        variable: params.get(keyword, _LIBPQ_DEFAULTS.get(keyword, ""))
        for keyword, variable in _CONNECTION_VARS.items()
    }


def settings_env(config: Config) -> dict[str, str]:
    """Mart settings from evalhouse.yaml (stage bands, baseline window, link base URLs)."""
    drift = config.drift
    bands = {stage: band.model_dump() for stage, band in drift.stage_bands.items()}
    return {
        "EVALHOUSE_DBT_BASELINE_DAYS": str(drift.baseline_days),
        "EVALHOUSE_DBT_TOO_EASY_ABOVE": repr(drift.default_band.too_easy_above),
        "EVALHOUSE_DBT_STALLING_BELOW": repr(drift.default_band.stalling_below),
        "EVALHOUSE_DBT_STAGE_BANDS": json.dumps(bands, sort_keys=True),
        "EVALHOUSE_DBT_ALERTS_BASE_URL": config.alerts.base_url,
        "EVALHOUSE_DBT_DAGSTER_URL": config.alerts.dagster_url,
    }


def dbt_env(
    url: str | None = None,
    config: Config | None = None,
    target_path: Path | str | None = None,
) -> dict[str, str]:
    """Every environment variable a dbt invocation of dbt_project/ needs (merge into os.environ).

    `url` defaults to the warehouse in use, `config` to evalhouse.yaml. `target_path` moves dbt's
    artifacts (manifest, partial-parse state) away from dbt_project/target, e.g. for tests.
    """
    from evals.config import load_config
    from evals.warehouse import database_url

    env = {
        **OFFLINE_ENV,
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "EVALHOUSE_DBT_BI_ROLE": BI_ROLE,
        # dbt's default (eager) also runs a test when only one of its models is selected, e.g.
        # a relationships test from an unselected model that may not exist yet: its error
        # then skips the selected models downstream. `buildable` runs a test once all its
        # models are selected or upstream of the selection.
        "DBT_INDIRECT_SELECTION": os.environ.get("DBT_INDIRECT_SELECTION", "buildable"),
        **connection_env(url or database_url()),
        **settings_env(config if config is not None else load_config()),
    }
    if target_path is not None:
        env["DBT_TARGET_PATH"] = str(target_path)
        env["DBT_LOG_PATH"] = str(target_path)
    return env


@contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ inside the block (for dbt, in or out of this process), then the
    environment as it was."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_dbt(args: Sequence[str], env: Mapping[str, str] | None = None) -> dbtRunnerResult:
    """Invoke dbt in this process (no second interpreter start-up) with `dbt_env()` applied.

    Invocations are sequential: dbt's runner is not safe to call from two threads at once.
    """
    from dbt.cli.main import dbtRunner

    with scoped_environment(env if env is not None else dbt_env()):
        return dbtRunner().invoke(list(args))


def ensure_manifest(config: Config | None = None) -> Path:
    """PARSE_TARGET/manifest.json, parsed (`dbt parse` in this process, no warehouse connection,
    under `config`'s settings) only when it is missing or older than a file of the dbt project.

    A file lock keeps processes that load at once (a code server and its run workers, the web's
    first requests) from parsing into the same folder together.
    """
    from filelock import FileLock

    manifest = PARSE_TARGET / "manifest.json"
    if _is_current(manifest):
        return manifest
    PARSE_TARGET.mkdir(parents=True, exist_ok=True)
    with FileLock(PARSE_TARGET / "parse.lock"):
        if not _is_current(manifest):  # another process may have parsed meanwhile
            env = dbt_env(url=_PARSE_URL, config=config, target_path=PARSE_TARGET)
            result = run_dbt(["parse", "--quiet"], env=env)
            if not result.success:
                raise RuntimeError(f"dbt parse failed: {result.exception}")
    return manifest


def _is_current(manifest: Path) -> bool:
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml"] + [
        path
        for folder in ("models", "macros", "tests")
        for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.is_file()
    ]
    return all(path.stat().st_mtime <= built for path in sources)
