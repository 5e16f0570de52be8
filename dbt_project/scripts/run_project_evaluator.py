"""Run dbt-project-evaluator on this dbt project from fetched copies of it and of dbt_utils.

The dbt package hub is unreachable here, and neither package is vendored into the repository:
this script copies dbt_project/ and the evaluator to a temporary directory, points both at the
given local checkouts (the evaluator's own packages.yml names dbt_utils on the hub), loads the
project's exceptions seed (evaluator/dbt_project_evaluator_exceptions.csv, outside the normal
seed path so `dbt build` never loads it) and runs `dbt deps` and
`dbt build --select package:dbt_project_evaluator dbt_project_evaluator_exceptions` with every
rule as an error, against the warehouse in use (`evalhouse db url`; it gets a schema
`dbt_project_evaluator`). Steps and versions: docs/dbt-checks.md.

    .venv/bin/python dbt_project/scripts/run_project_evaluator.py EVALUATOR_DIR DBT_UTILS_DIR
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from evals.config import load_config
from evals.dbt import DBT_PROJECT_DIR, dbt_env, run_dbt

EXCEPTIONS_DIR = "evaluator"
BUILD_ONLY = ["target", "dbt_packages", "logs", "scripts"]


def _project_copy(work: Path) -> Path:
    """dbt_project/ with the exceptions seed on its seed path, the evaluator's blank seed off,
    every rule an error, and the evaluator's tables in a schema of their own."""
    project = work / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns(*BUILD_ONLY))
    settings = yaml.safe_load((project / "dbt_project.yml").read_text())
    settings["seed-paths"] = [EXCEPTIONS_DIR]
    settings.setdefault("seeds", {})["dbt_project_evaluator"] = {
        "dbt_project_evaluator_exceptions": {"+enabled": False}
    }
    settings.setdefault("data_tests", {})["dbt_project_evaluator"] = {"+severity": "error"}
    settings["models"]["dbt_project_evaluator"] = {"+schema": "dbt_project_evaluator"}
    settings["seeds"]["evalhouse"] = {"+schema": "dbt_project_evaluator"}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return project


def _local_packages(work: Path, evaluator: Path, dbt_utils: Path) -> Path:
    """A copy of the evaluator whose dependency is the local dbt_utils."""
    copy = work / "dbt_project_evaluator"
    shutil.copytree(evaluator, copy, ignore=shutil.ignore_patterns(".git", "integration_tests*"))
    packages = {"packages": [{"local": str(dbt_utils)}]}
    (copy / "packages.yml").write_text(yaml.safe_dump(packages))
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluator", type=Path, help="a checkout of dbt-labs/dbt-project-evaluator")
    parser.add_argument("dbt_utils", type=Path, help="a checkout of dbt-labs/dbt-utils")
    args = parser.parse_args(argv)
    evaluator, dbt_utils = args.evaluator.resolve(), args.dbt_utils.resolve()
    for package in (evaluator, dbt_utils):
        if not (package / "dbt_project.yml").is_file():
            parser.error(f"{package} is not a dbt package (no dbt_project.yml)")
    with tempfile.TemporaryDirectory(prefix="evalhouse-evaluator-") as tmp:
        work = Path(tmp)
        project = _project_copy(work)
        local = _local_packages(work, evaluator, dbt_utils)
        packages = {"packages": [{"local": str(local)}, {"local": str(dbt_utils)}]}
        (project / "packages.yml").write_text(yaml.safe_dump(packages))
        env = {
            **dbt_env(config=load_config()),
            "DBT_PROJECT_DIR": str(project),
            "DBT_PROFILES_DIR": str(project),
        }
        for command in (
            ["deps"],
            [
                "build",
                "--select",
                "package:dbt_project_evaluator",
                "dbt_project_evaluator_exceptions",
            ],
        ):
            result = run_dbt(command, env=env)
            if not result.success:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
