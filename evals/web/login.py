"""The login form (token → server-side session → signed session cookie) and logout (ends it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from evals.web import sessions
from evals.web.deps import check_csrf, current_user, state
from evals.web.security import SESSION_COOKIE, SESSION_TTL_S, Principal

router = APIRouter()

_NAME_MAX = 64


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    web = state(request)
    return web.page(
        request, "login.html", next=_safe_next(next), error=None, token_env=web.config.web.token_env
    )


@router.post("/login")
def login(
    request: Request,
    token: str = Form(""),
    name: str = Form(""),
    next: str = Form("/"),
):
    web = state(request)
    name = " ".join(name.split())[:_NAME_MAX]
    if not name or not web.guard.token_matches(token):
        error = "Enter your name." if not name else "That token is not valid."
        return web.page(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error=error,
            token_env=web.config.web.token_env,
        )
    session_id = sessions.start(web.db, name, SESSION_TTL_S)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        web.guard.session_cookie(name, session_id),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), principal: Principal = Depends(current_user)):
    check_csrf(principal, csrf, request)
    if principal.method == "session":
        sessions.end(state(request).db, principal.nonce)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
