"""What the page routers depend on: the app's shared state, the caller, and the CSRF check.

The routers import this module and `evals.web.app` assembles them, so imports run one way
(app → routers → deps) and a router can be imported, or tested, without the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from evals.config import Config
from evals.web import sessions
from evals.web.db import WebDatabase
from evals.web.render import Scrubber
from evals.web.security import CSRF_HEADER, AuthError, Guard, Principal


@dataclass
class WebState:
    """What every request handler needs, kept on `app.state.web`."""

    config: Config
    guard: Guard
    db: WebDatabase
    templates: Jinja2Templates
    scrub: Scrubber

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any):
        principal = getattr(request.state, "principal", None)
        context.update(
            principal=principal,
            csrf=self.guard.csrf_token(principal) if principal else "",
            nav=name.split(".")[0].split("_")[0],
        )
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)


def state(request: Request) -> WebState:
    return request.app.state.web


def current_user(request: Request) -> Principal:
    """Dependency of every page: the authenticated caller, or AuthError (401 / login redirect)."""
    web = state(request)
    principal = web.guard.authenticate(request)
    if principal.method == "session" and not sessions.is_live(web.db, principal.nonce):
        raise AuthError("the session was ended or has expired")
    request.state.principal = principal
    return principal


def check_csrf(principal: Principal, submitted: str | None, request: Request) -> None:
    """Raise CsrfError unless the form field (or the X-CSRF-Token header) holds a valid token."""
    state(request).guard.check_csrf(principal, submitted or request.headers.get(CSRF_HEADER))
