"""Where an evaluation started over HTTP runs: a Dagster run where the code location is deployed,
else the server's own worker (evals.batch_requests.BatchWorker).

The deployed code location is the Dagster webserver at `alerts.dagster_url` (the address every
alert already links to). `evalhouse serve` asks it once at start-up whether it serves the
`api_batch` job (`api.batch_runner`: `auto` uses it when it does, `dagster` requires it,
`server` never asks); from then on each request is one launched run of that job, through the
webserver's GraphQL API, so the daemon's run queue, run launcher and the UI see it like any run.
Plain HTTP, no Dagster import: the server and the code location may live on different hosts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

JOB = "api_batch"
"""The job in orchestration/defs/batches."""
OP = "run_api_batch"
"""Its one op, which takes the request id as config."""
LOCATION = "evalhouse"
"""The code location's name (pyproject's [tool.dagster], workspace.yaml)."""
TIMEOUT_S = 10.0

_HAS_JOB = """
query HasJob($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) { __typename }
}
"""

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""


class LaunchError(RuntimeError):
    """The webserver could not be reached or refused the run (its message says why)."""


@dataclass(frozen=True)
class DagsterLauncher:
    """Launches the `api_batch` job for one request through a Dagster webserver's GraphQL."""

    url: str
    client: httpx.Client | None = None

    @staticmethod
    def _selector(job_field: str) -> dict[str, str]:
        """The job in the code location (GraphQL names it `pipelineName` or `jobName`)."""
        return {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            job_field: JOB,
        }

    def run_url(self, run_id: str) -> str:
        return f"{self.url.rstrip('/')}/runs/{run_id}"

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        client = self.client or httpx.Client(timeout=TIMEOUT_S)
        try:
            response = client.post(
                f"{self.url.rstrip('/')}/graphql", json={"query": query, "variables": variables}
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LaunchError(f"Dagster webserver: {type(exc).__name__}") from None
        finally:
            if self.client is None:
                client.close()
        if body.get("errors"):
            raise LaunchError(f"Dagster GraphQL: {body['errors'][0].get('message')}")
        return body["data"]

    def serves_job(self) -> bool:
        """Whether the webserver answers and its workspace has the job (the deployed location)."""
        try:
            data = self._graphql(_HAS_JOB, {"selector": self._selector("pipelineName")})
        except LaunchError:
            return False
        return data["pipelineOrError"]["__typename"] == "Pipeline"

    def launch(self, request_id: uuid.UUID, requested_by: str) -> str:
        """Launch the job for a queued request; its Dagster run id."""
        result = self._graphql(
            _LAUNCH,
            {
                "params": {
                    "selector": self._selector("jobName"),
                    "runConfigData": {"ops": {OP: {"config": {"request_id": str(request_id)}}}},
                    "executionMetadata": {
                        "tags": [
                            {"key": "evalhouse/batch_request", "value": str(request_id)},
                            {"key": "evalhouse/source", "value": f"api:{requested_by}"},
                        ]
                    },
                }
            },
        )["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            return result["run"]["runId"]
        reason = result.get("message") or "; ".join(
            e["message"] for e in result.get("errors") or []
        )
        raise LaunchError(f"Dagster refused the run ({result['__typename']}): {reason}")


def dagster_launcher(
    dagster_url: str, mode: str, client: httpx.Client | None = None
) -> DagsterLauncher | None:
    """The launcher `api.batch_runner` asks for: None means the server's worker runs batches.
    `dagster` without a webserver serving the job is an error, not a silent fallback."""
    if mode == "server":
        return None
    launcher = DagsterLauncher(dagster_url, client)
    if launcher.serves_job():
        return launcher
    if mode == "dagster":
        raise LaunchError(f"no Dagster webserver serving job {JOB!r} at {dagster_url}")
    return None
