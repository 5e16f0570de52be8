"""Dagster wiring of the evals library (the code location is orchestration.definitions).

Dagster marks APIs this code location relies on as beta/preview (single-run backfill policies,
partitioned asset checks, observable source assets); the warnings say nothing a user can act
on, so they are silenced here, once, for every module of the package.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
