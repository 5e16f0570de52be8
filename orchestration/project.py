"""The dbt project as Dagster sees it: one `DbtProject`, its manifest prepared when it loads.

dagster-dbt builds the asset graph from `target/dagster/manifest.json`. `dbt_project(config)`
parses it (`dbt parse` in this process, no warehouse connection, ~5 s) when it is missing or
older than a file of the dbt project, and otherwise costs a few dozen `stat` calls; every loader —
`dagster dev`, `dagster definitions validate`, a code server, a run worker, the tests — works on
a fresh checkout, and an image built with the manifest never parses. A file lock keeps two
processes loading at once from parsing into the same folder. Dagster's artifacts live in their
own target folder so they never race with `evalhouse dbt` runs over dbt_project/target.
dbt is the one installed beside this interpreter, whether or not the venv is on PATH.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dagster_dbt import DbtProject
from filelock import FileLock

from evals.dbt import DBT_PROJECT_DIR

if TYPE_CHECKING:
    from evals.config import Config

TARGET_PATH = "target/dagster"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
_PARSE_URL = "postgresql://postgres@localhost/evalhouse"
"""`dbt parse` renders profiles.yml but never connects: any well-formed URL will do."""
_SOURCE_FOLDERS = ("models", "macros", "tests")


def dbt_project(config: Config) -> DbtProject:
    """The project, with a manifest that matches its files (parsed under `config`'s settings)."""
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=TARGET_PATH
    )
    if not _is_current(project.manifest_path):
        project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(project.manifest_path.with_suffix(".lock")):
            if not _is_current(project.manifest_path):  # another process may have parsed
                _parse(project, config)
    return project


def _is_current(manifest: Path) -> bool:
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml"] + [
        path for folder in _SOURCE_FOLDERS
        for path in (DBT_PROJECT_DIR / folder).rglob("*") if path.is_file()
    ]
    return all(path.stat().st_mtime <= built for path in sources)


def _parse(project: DbtProject, config: Config) -> None:
    from evals.dbt import dbt_env, run_dbt

    env = dbt_env(url=_PARSE_URL, config=config, target_path=project.project_dir / TARGET_PATH)
    result = run_dbt(["parse", "--quiet"], env=env)
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
