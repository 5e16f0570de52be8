"""The evalhouse code location: every domain's definitions, built from ONE loaded config.

`build_definitions(config)` is the only place the graph is made: evalhouse.yaml shapes it (one
golden-runs asset per candidate model, the nightly cron), the dbt manifest adds the marts and
their tests, and the resource hands the same config to every asset, check and sensor at run
time. Dagster needs a module-level `defs`, so loading this module loads the config once
($EVALHOUSE_CONFIG, else ./evalhouse.yaml) and prepares the dbt manifest when it is missing.
Nothing here holds logic: assets and checks call the `evals` library, and dbt owns the marts.
"""

import dagster as dg

from evals.config import Config, load_config
from orchestration.defs import (
    alerts,
    batches,
    drift,
    gate,
    golden,
    lifecycle,
    pairwise,
    production,
    rejudge,
    reviews,
    warehouse,
)
from orchestration.lib.environment import executor, step_config
from orchestration.lib.resources import Evalhouse
from orchestration.project import dbt_project


def build_definitions(config: Config) -> dg.Definitions:
    """The code location for `config`: each domain's Definitions, merged, plus the resources."""
    project = dbt_project(config)
    dbt_assets = warehouse.warehouse_dbt_assets(config, project)
    return dg.Definitions.merge(
        golden.build_defs(config),
        production.build_defs(),
        reviews.build_defs(),
        warehouse.build_defs(dbt_assets, project),
        drift.build_defs(config, dbt_assets),
        alerts.build_defs(),
        batches.build_defs(),
        gate.build_defs(),
        rejudge.build_defs(),
        lifecycle.build_defs(),
        pairwise.build_defs(config, dbt_assets),
        dg.Definitions(
            resources={"evalhouse": Evalhouse(step_config(config))}, executor=executor()
        ),
    )


defs = build_definitions(load_config())
