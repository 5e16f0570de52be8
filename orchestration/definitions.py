"""The evalhouse code location: every domain's definitions, merged, plus shared resources.

Each domain under `orchestration/defs/` contributes its own `defs` (assets, checks, jobs,
sensors); this module only merges them. Nothing here holds logic: assets and checks call the
`evals` library, and dbt owns the marts.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from orchestration.defs import alerts, drift, gate, golden, production, reviews, warehouse  # noqa: E402
from orchestration.lib.resources import EvalhouseResource  # noqa: E402

defs = dg.Definitions.merge(
    golden.defs,
    production.defs,
    reviews.defs,
    warehouse.defs,
    drift.defs,
    alerts.defs,
    gate.defs,
    dg.Definitions(resources={"evalhouse": EvalhouseResource()}),
)
