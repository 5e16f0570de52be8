"""The one resource every evalhouse asset uses: the loaded configuration and the warehouse.

It holds the same `Config` the graph was built from (`build_definitions`), so assets, checks
and sensors never read evalhouse.yaml again at run time and cannot disagree with the graph.
The library (`evals/`) finds the warehouse through EVALHOUSE_DATABASE_URL or the embedded
Postgres under EVALHOUSE_HOME, so the resource only hands out connections; nothing about the
warehouse is configured twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import dagster as dg

from evals import warehouse
from evals.config import Config


@dataclass(frozen=True)
class Evalhouse:
    """evalhouse.yaml as loaded once, and connections to its warehouse."""

    config: Config

    def connect(self, **kwargs):
        """A psycopg 3 connection on the warehouse (the caller closes it)."""
        return warehouse.connect(**kwargs)


EvalhouseResource: TypeAlias = dg.ResourceParam[Evalhouse]
"""How assets, checks and sensors ask for it (`evalhouse: EvalhouseResource`)."""
