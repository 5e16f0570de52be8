"""The dbt project as Dagster sees it (one `DbtProject`, imported by the dbt assets).

dagster-dbt builds the asset graph from `target/dagster/manifest.json`, which must exist before
the code location is imported: `prepare_manifest()` writes it (`dbt parse` in this process, no
warehouse connection needed); the demo, the tests and CI call it first, and under `dagster dev`
the project re-parses itself on load (`prepare_if_dev`). Dagster's artifacts live in their own
target folder so they never race with `evalhouse dbt` runs over dbt_project/target.
dbt is the one installed beside this interpreter, whether or not the venv is on PATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from evals.dbt import DBT_PROJECT_DIR

TARGET_PATH = "target/dagster"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
_PARSE_URL = "postgresql://postgres@localhost/evalhouse"
"""`dbt parse` renders profiles.yml but never connects: any well-formed URL will do."""

os.environ["PATH"] = f"{Path(DBT_EXECUTABLE).parent}{os.pathsep}{os.environ.get('PATH', '')}"

DBT_PROJECT = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target_path=TARGET_PATH,
)
DBT_PROJECT.prepare_if_dev()


def prepare_manifest() -> Path:
    """Write the manifest the dbt assets are built from; returns its path."""
    from evals.dbt import dbt_env, run_dbt

    env = dbt_env(url=_PARSE_URL, target_path=DBT_PROJECT.project_dir / TARGET_PATH)
    result = run_dbt(["parse", "--quiet"], env=env)
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    return DBT_PROJECT.manifest_path


def ensure_manifest() -> Path:
    """Parse only when the manifest is missing or older than a file of the dbt project."""
    manifest = DBT_PROJECT.manifest_path
    if manifest.exists():
        built = manifest.stat().st_mtime
        sources = [
            path for folder in ("models", "macros", "tests")
            for path in (DBT_PROJECT.project_dir / folder).rglob("*") if path.is_file()
        ] + [DBT_PROJECT.project_dir / "dbt_project.yml"]
        if all(path.stat().st_mtime <= built for path in sources):
            return manifest
    return prepare_manifest()
