"""The API's own OpenAPI schema and interactive docs (Swagger UI), behind the same credential.

Swagger UI's files come from the `fastapi-offline` wheel, served here (no CDN), and it starts
from a script file of ours: the app's CSP allows scripts from 'self' only. A browser signed in
to the pages (session or basic auth) may read the docs; trying a call there still needs a
Bearer token (the "Authorize" button), since API routes accept nothing else.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from evals.web.api.auth import BEARER_SCHEME, identify, refuse_query_credentials
from evals.web.api.problems import Problem
from evals.web.deps import state
from evals.web.security import AuthError

router = APIRouter(include_in_schema=False)
SWAGGER = Path(fastapi_offline.__file__).with_name("static")
OWN_STATIC = Path(__file__).with_name("static")
_FILES = {
    "swagger-ui-bundle.js": SWAGGER / "swagger-ui-bundle.js",
    "swagger-ui.css": SWAGGER / "swagger-ui.css",
    "favicon.png": SWAGGER / "favicon.png",
    "docs.js": OWN_STATIC / "docs.js",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evalhouse API v1</title>
<link rel="icon" href="/api/v1/docs/static/favicon.png">
<link rel="stylesheet" href="/api/v1/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/v1/docs/static/swagger-ui-bundle.js"></script>
<script src="/api/v1/docs/static/docs.js"></script></body></html>
"""


def reader(request: Request, credentials=Depends(BEARER_SCHEME)) -> str:
    """An API token, or any credential the pages accept; else 401 (a browser: the login form)."""
    refuse_query_credentials(request)
    if caller := identify(request, credentials.credentials if credentials else None):
        return caller.name
    try:
        return state(request).guard.authenticate(request).name
    except AuthError:
        if "text/html" in request.headers.get("accept", ""):
            raise HTTPException(303, headers={"location": "/login?next=/api/v1/docs"}) from None
        raise Problem(401, "authentication required", slug="unauthenticated") from None


@router.get("/openapi.json")
def openapi(request: Request, _: str = Depends(reader)) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs(_: str = Depends(reader)) -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/docs/static/{name}")
def docs_static(name: str, _: str = Depends(reader)) -> FileResponse:
    if name not in _FILES:
        raise Problem(404, "no such file", slug="not-found")
    return FileResponse(_FILES[name])
