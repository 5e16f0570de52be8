"""The warehouse's marts: the dbt project (staging → intermediate → marts) with its tests."""

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from orchestration.defs.warehouse.dbt_assets import warehouse_dbt_assets
from orchestration.project import DBT_EXECUTABLE

__all__ = ["build_defs", "warehouse_dbt_assets"]


def build_defs(dbt_assets: dg.AssetsDefinition, project: DbtProject) -> dg.Definitions:
    """`dbt_assets` (from `warehouse_dbt_assets`; the drift checks attach to them too) and the
    dbt CLI resource that builds them."""
    return dg.Definitions(
        assets=[dbt_assets],
        resources={
            "dbt": DbtCliResource(
                project_dir=project,
                profiles_dir=str(project.profiles_dir),
                dbt_executable=DBT_EXECUTABLE,
            )
        },
    )
