"""Evaluations started over HTTP: the `api_batch` job the server launches for each request."""

import dagster as dg

from orchestration.defs.batches import jobs


def build_defs() -> dg.Definitions:
    return dg.Definitions(jobs=[jobs.api_batch_job])
