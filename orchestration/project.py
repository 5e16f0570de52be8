"""The dbt project as Dagster sees it (one `DbtProject`, imported by the dbt assets).

dagster-dbt builds the asset graph from `target/parsed/manifest.json`, which must exist before
the code location is imported: `evals.dbt.ensure_manifest()` writes it when missing or stale
(`dbt parse` in this process, no warehouse connection needed); the demo, the tests and CI call it
first, and under `dagster dev` the project re-parses itself on load (`prepare_if_dev`). The
readers of `evals.marts` resolve mart names from the same manifest. It lives in its own target
folder so it never races with `evalhouse dbt` runs over dbt_project/target.
dbt is the one installed beside this interpreter, whether or not the venv is on PATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from evals.dbt import DBT_PROJECT_DIR, PARSE_TARGET

TARGET_PATH = PARSE_TARGET.relative_to(DBT_PROJECT_DIR)
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

os.environ["PATH"] = f"{Path(DBT_EXECUTABLE).parent}{os.pathsep}{os.environ.get('PATH', '')}"

DBT_PROJECT = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target_path=TARGET_PATH,
)
DBT_PROJECT.prepare_if_dev()

