"""`api_batch`: one evaluation started through `POST /api/v1/batches`, as a Dagster run.

`evalhouse serve` launches it (evals.batch_launch) with the request's id as run config, where
this code location is deployed; the op runs the request through `evals.batch_requests` — claim,
heartbeat, the runner, then the summary and the webhooks' alert in one transaction — and
delivers the callback once. A callback that fails is retried by the server's worker. A request that is no
longer queued (already finished, or running elsewhere) makes the run a no-op, so re-executing a
run never runs a request twice; re-executing a run whose process was killed completes it.
"""

import uuid

import dagster as dg

from evals import batch_launch, batch_requests
from orchestration.lib.resources import EvalhouseResource


class ApiBatchConfig(dg.Config):
    """The raw.batch_requests row to run."""

    request_id: str


@dg.op(name=batch_launch.OP)
def api_batch(context: dg.OpExecutionContext, config: ApiBatchConfig, evalhouse: EvalhouseResource):
    """Run one API-started evaluation and call its callback."""
    request_id = uuid.UUID(config.request_id)
    status = batch_requests.run_by_id(
        evalhouse.config,
        lambda: evalhouse.connect(autocommit=True),
        request_id,
        orchestrator_run_id=context.run_id,
    )
    if status is None:
        context.log.info(f"request {request_id} is not queued: nothing to run")
        return
    with evalhouse.connect(autocommit=True) as conn:
        batch_requests.deliver_callbacks(conn)
    # A failed evaluation is the request's state (and its batch_failed alert), not a failed
    # run: run_failure_alerts would raise a second, critical alert for it.
    context.log.info(f"request {request_id}: {status}")


@dg.job(
    name=batch_launch.JOB,
    description="One evaluation started through POST /api/v1/batches (launched by the server).",
    tags={"evalhouse/source": "api"},
)
def api_batch_job():
    api_batch()
