"""The FastAPI application: assembles auth, the database pool, templates and the page routers.

Routes are plain `def` handlers: FastAPI runs them in its thread pool, where blocking psycopg
calls (and a replay's LLM call) belong, and the overview fans its queries out itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from evals.config import Config
from evals.web import alerts, batches, leaderboard, login, overview, runs
from evals.web.db import WebDatabase, web_conninfo
from evals.web.deps import WebState, current_user
from evals.web.render import STATIC, Scrubber, make_environment
from evals.web.security import AuthError, CsrfError, Guard

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


def create_app(config: Config, token: str, *, database: WebDatabase | None = None) -> FastAPI:
    """The app. `token` is the operator's web token; `database` defaults to the web role's pool."""
    database = database or WebDatabase(web_conninfo(config))
    scrub = Scrubber((token,), tuple(config.capture.redact_patterns))
    templates = Jinja2Templates(env=make_environment(scrub))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.open()
        try:
            yield
        finally:
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
    return app


def _handle_errors(app: FastAPI) -> None:
    """Security headers on every response; a browser without a session goes to the login page,
    a browser's HTTP errors are pages, everything else gets plain text."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
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
        if "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        return app.state.web.page(
            request,
            "error.html",
            status_code=exc.status_code,
            code=exc.status_code,
            title=HTTPStatus(exc.status_code).phrase,
            detail=exc.detail,
        )

    @app.exception_handler(CsrfError)
    async def forged(request: Request, exc: CsrfError) -> Response:
        return PlainTextResponse("CSRF token missing or invalid", status_code=403)
