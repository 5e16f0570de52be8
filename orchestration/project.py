"""The dbt project as Dagster sees it: one `DbtProject`, its manifest prepared when it loads.

dagster-dbt builds the asset graph from `target/parsed/manifest.json`; `dbt_project(config)`
has `evals.dbt.ensure_manifest` parse it (in this process, no warehouse connection, ~5 s) when it
is missing or older than a file of the dbt project, and otherwise costs a few dozen `stat` calls:
every loader — `dagster dev`, `dagster definitions validate`, a code server, a run worker, the
tests — works on a fresh checkout, and an image built with the manifest never parses. The readers
of `evals.marts` resolve mart names from the same manifest. It lives in its own target folder so
it never races with `evalhouse dbt` runs over dbt_project/target.
dbt is the one installed beside this interpreter, whether or not the venv is on PATH.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dagster_dbt import DbtProject

from evals.dbt import DBT_PROJECT_DIR, PARSE_TARGET, ensure_manifest

if TYPE_CHECKING:
    from evals.config import Config

TARGET_PATH = PARSE_TARGET.relative_to(DBT_PROJECT_DIR)
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))


def dbt_project(config: Config) -> DbtProject:
    """The project, with a manifest that matches its files (parsed under `config`'s settings)."""
    ensure_manifest(config)
    return DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=TARGET_PATH
    )
