"""A code location holding only the `api_batch` job, for tests that launch it through a real
Dagster webserver (the whole code location takes ~40 s to load here; the job needs none of it).
"""

import dagster as dg

from evals.config import load_config
from orchestration.defs.batches.jobs import api_batch_job
from orchestration.lib.resources import Evalhouse
from tests.conftest import REPO_ROOT

defs = dg.Definitions(
    jobs=[api_batch_job],
    resources={"evalhouse": Evalhouse(load_config(REPO_ROOT / "evalhouse.yaml"))},
)
