"""The one resource every evalhouse asset uses: the configuration and the warehouse.

The library (`evals/`) finds the warehouse through EVALHOUSE_DATABASE_URL or the embedded
Postgres under EVALHOUSE_HOME, so the resource only points at the configuration file and hands
out connections; nothing about the warehouse is configured twice.
"""

from __future__ import annotations

import dagster as dg

from evals import warehouse
from evals.config import Config, load_config


class EvalhouseResource(dg.ConfigurableResource):
    """evalhouse.yaml (or $EVALHOUSE_CONFIG) and connections to its warehouse."""

    config_path: str | None = None

    def load(self) -> Config:
        return load_config(self.config_path)

    def connect(self, **kwargs):
        """A psycopg 3 connection on the warehouse (the caller closes it)."""
        return warehouse.connect(**kwargs)
