"""The evalhouse code location: every domain's definitions, merged, plus shared resources.

Each domain under `orchestration/defs/` contributes its own `defs` (assets, checks, jobs,
sensors); this module only merges them. Nothing here holds logic: assets and checks call the
`evals` library, and dbt owns the marts.
"""

import dagster as dg

from orchestration.defs import (
    alerts,
    drift,
    gate,
    golden,
    production,
    rejudge,
    reviews,
    warehouse,
)
from orchestration.lib.environment import executor
from orchestration.lib.resources import EvalhouseResource

defs = dg.Definitions.merge(
    golden.defs,
    production.defs,
    reviews.defs,
    warehouse.defs,
    drift.defs,
    alerts.defs,
    gate.defs,
    rejudge.defs,
    dg.Definitions(resources={"evalhouse": EvalhouseResource()}, executor=executor()),
)
