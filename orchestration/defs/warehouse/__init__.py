"""The warehouse's marts: the dbt project (staging → intermediate → marts) with its tests."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.warehouse import dbt_assets
from orchestration.project import DBT_EXECUTABLE, DBT_PROJECT

defs = dg.Definitions(
    assets=[dbt_assets.warehouse_dbt],
    resources={
        "dbt": DbtCliResource(
            project_dir=DBT_PROJECT,
            profiles_dir=str(DBT_PROJECT.profiles_dir),
            dbt_executable=DBT_EXECUTABLE,
        )
    },
)
