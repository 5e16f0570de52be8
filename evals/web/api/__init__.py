"""The JSON API under /api/v1: a FastAPI app of its own, mounted into the web app.

Its own app gives it its own OpenAPI schema and docs, and its own error handlers (problem+json
for everything) without touching how the pages answer. It shares the pages' state (config,
database pool, token guard) and adds what only the API needs: the rate limiter, the run-log
preparer of capture, the limits, and the batch worker if this server runs one.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from evals.batch_launch import DagsterLauncher
from evals.batch_requests import BatchWorker
from evals.capture.verdicts import suite_verdict_parser
from evals.web.api import alerts, batches, boards, docs, health, models, problems, runs
from evals.web.api.auth import RateLimiter, api_caller
from evals.web.deps import WebState

PREFIX = "/api/v1"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DESCRIPTION = """\
The evalhouse warehouse over HTTP: the run log (read and ingest), evaluation batches, their
comparison, the leaderboard, alerts, models and health. Every route needs
`Authorization: Bearer <token>`; errors are `application/problem+json`. See docs/api.md.
"""


def create_api(
    web: WebState,
    batch_worker: BatchWorker | None = None,
    batch_launcher: DagsterLauncher | None = None,
) -> FastAPI:
    settings = web.config.api
    api = FastAPI(
        title="evalhouse API",
        version="1",
        description=DESCRIPTION,
        servers=[{"url": PREFIX}],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api.state.web = web
    api.state.settings = settings
    api.state.rate_limiter = RateLimiter(settings.rate_per_minute, settings.burst)
    api.state.parse_verdict = suite_verdict_parser(web.config)
    api.state.batch_worker = batch_worker
    api.state.batch_launcher = batch_launcher
    problems.install(api)

    @api.middleware("http")
    async def limits(request: Request, call_next):
        """Bodies over `api.max_body_bytes` are refused before they are read (413), bodies of
        unknown length too (411); every answer says what is left of the caller's rate."""
        if request.method in _BODY_METHODS:
            length = request.headers.get("content-length")
            if length is None:
                return problems.problem_response(
                    request, 411, "send a Content-Length", slug="length-required"
                )
            if not length.isdigit() or int(length) > settings.max_body_bytes:
                return problems.problem_response(
                    request,
                    413,
                    f"the body is over the limit of {settings.max_body_bytes} bytes",
                    slug="too-large",
                )
        response = await call_next(request)
        if (rate := getattr(request.state, "rate_limit", None)) is not None:
            response.headers["ratelimit-limit"] = str(rate[0])
            response.headers["ratelimit-remaining"] = str(rate[1])
        return response

    api.include_router(docs.router)
    for module in (runs, batches, boards, alerts, models, health):
        api.include_router(module.router, dependencies=[Depends(api_caller)])
    return api
