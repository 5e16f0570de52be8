"""The FastAPI application: assembles auth, the database pool, templates and the page routers.

Routes are plain `def` handlers: FastAPI runs them in its thread pool, where blocking psycopg
calls (and a replay's LLM call) belong, and the overview fans its queries out itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from urllib.parse import quote

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from evals.batch_launch import DagsterLauncher
from evals.batch_requests import BatchWorker
from evals.config import Config
from evals.web import alerts, batches, leaderboard, login, overview, runs
from evals.web.api import PREFIX as API_PREFIX
from evals.web.api import create_api
from evals.web.db import WebDatabase, web_conninfo
from evals.web.deps import WebState, current_user
from evals.web.render import STATIC, Scrubber, make_environment
from evals.web.security import AuthError, CsrfError, Guard

log = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def create_app(
    config: Config,
    token: str,
    *,
    database: WebDatabase | None = None,
    batch_worker: BatchWorker | None = None,
    batch_launcher: DagsterLauncher | None = None,
) -> FastAPI:
    """The app. `token` is the operator's web token; `database` defaults to the web role's pool;
    `batch_launcher` launches a Dagster run for each evaluation started through the API, and
    `batch_worker` runs them in this server (those the launcher could not launch, or all of them
    without one; started and stopped with the app; without either they wait queued)."""
    database = database or WebDatabase(web_conninfo(config))
    scrub = Scrubber((token,), tuple(config.capture.redact_patterns))
    templates = Jinja2Templates(env=make_environment(scrub))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.open()
        if batch_worker is not None:
            batch_worker.start()
        try:
            yield
        finally:
            if batch_worker is not None:
                batch_worker.stop()
            database.close()

    app = FastAPI(
        title="evalhouse", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.web = WebState(
        config=config, guard=Guard(token), db=database, templates=templates, scrub=scrub
    )

    _handle_errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(login.router)
    for module in (overview, runs, alerts, batches, leaderboard):
        app.include_router(module.router, dependencies=[Depends(current_user)])
    app.mount(API_PREFIX, create_api(app.state.web, batch_worker, batch_launcher))
    return app


def _nul_in(request: Request) -> str | None:
    """Where a request carries a NUL character (Postgres text cannot hold one), or None."""
    if "\x00" in request.url.path:
        return "path"
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            return f"parameter {name.replace(chr(0), '')}"
    return None


def _handle_errors(app: FastAPI) -> None:
    """Security headers on every response; a browser without a session goes to the login page;
    bad input is a 4xx that says why and an unreachable warehouse a 503, never a 500. A
    browser's HTTP errors are pages, everything else gets plain text."""

    def error(request: Request, status_code: int, detail: str) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse(detail, status_code=status_code)
        return app.state.web.page(
            request,
            "error.html",
            status_code=status_code,
            code=status_code,
            title=HTTPStatus(status_code).phrase,
            detail=detail,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        if where := _nul_in(request):
            response = error(request, 400, f"NUL characters are not allowed in a request ({where})")
        else:
            response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(AuthError)
    async def unauthenticated(request: Request, exc: AuthError) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return PlainTextResponse(
            "authentication required",
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="evalhouse", Basic realm="evalhouse"'},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(CsrfError)
    async def forged(request: Request, exc: CsrfError) -> Response:
        return PlainTextResponse("CSRF token missing or invalid", status_code=403)

    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(UnicodeEncodeError)
    async def unstorable(request: Request, exc: Exception) -> Response:
        """A value Postgres cannot take (a NUL in a form field, a lone surrogate, a date out of
        its range): the request's fault, so a 400 with Postgres's reason."""
        reason = getattr(getattr(exc, "diag", None), "message_primary", None) or (
            "text with an unpaired surrogate" if isinstance(exc, UnicodeEncodeError) else str(exc)
        )
        return error(request, 400, f"the warehouse cannot take a value of this request: {reason}")

    @app.exception_handler(psycopg.OperationalError)
    async def unavailable(request: Request, exc: psycopg.OperationalError) -> Response:
        """Postgres down, restarting or too slow: a 503 the browser can retry, not a 500."""
        log.warning("warehouse unavailable: %s", app.state.web.scrub(str(exc)))
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return error(request, 503, "the warehouse took too long to answer")
        return error(
            request, 503, "warehouse unavailable: Postgres does not answer (`evalhouse db status`)"
        )
