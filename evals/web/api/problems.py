"""Errors as RFC 9457 problem details (`application/problem+json`), one shape for every failure.

A client in any language reads `status`, `title` and `detail`; a validation failure adds
`errors`, each naming the field (`runs[3].status`) so a bad record is found without guessing.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "https://evalhouse.dev/problems/"


class Problem(Exception):
    """Raise to answer with a problem document; `slug` names its type (docs/api.md)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"{PROBLEM_TYPE}{slug}" if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_name(location: tuple | list) -> str:
    """`("body", "runs", 3, "status")` -> `runs[3].status` (the part a client wrote)."""
    parts = [part for part in location if part not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def install(app: FastAPI) -> None:
    """Every error of the API app, including FastAPI's own, as problem+json."""

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.detail, slug=exc.slug, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_name(error["loc"]), "message": error["msg"]}
            for error in exc.errors()[:50]
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem_response(
            request,
            422,
            f"{first['field']}: {first['message']}",
            slug="validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, exc.status_code, str(exc.detail), headers=exc.headers)
