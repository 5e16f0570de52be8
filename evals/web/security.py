"""Who may see the run log, and proof that a form post came from our own page.

The run log holds learner submissions, so every page needs a credential: the operator's token
(from the env var named by `web.token_env`), sent as `Authorization: Bearer`, as the password of
HTTP basic auth, or once through the login form, which then sets a signed session cookie (valid
only while its server-side session lives: evals.web.sessions).

Mutations are POSTs that carry a CSRF token. It is an HMAC of the session's nonce under a key
derived from the web token, so it cannot be forged without the token, needs no server-side
state, and dies with the session (or with a rotated token). Bearer requests are exempt: a
browser never attaches that header on its own, which is what a cross-site forgery relies on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from fastapi import Request

SESSION_COOKIE = "evalhouse_session"
SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the name shown on reviews and acknowledgements, and how it came."""

    name: str
    method: str  # "bearer" | "basic" | "session"
    nonce: str

    @property
    def needs_csrf(self) -> bool:
        return self.method != "bearer"


class AuthError(Exception):
    """No valid credential; the app answers 401 or redirects a browser to the login form."""


class CsrfError(Exception):
    """A state-changing request without a valid CSRF token; the app answers 403."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(submitted: str, expected: str) -> bool:
    """Constant-time equality that refuses, rather than raises on, any text: a browser sends a
    cookie's or a form's UTF-8 as is, and `compare_digest` rejects non-ASCII str."""
    return hmac.compare_digest(submitted.encode(errors="replace"), expected.encode())


class Guard:
    """Checks credentials and signs sessions and CSRF tokens with keys derived from the token."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the web token must be at least 16 characters")
        self._token = token.encode()
        self._key = hmac.new(self._token, b"evalhouse-web-session-v1", hashlib.sha256).digest()

    def token_matches(self, candidate: str) -> bool:
        return _same(candidate, self._token.decode())

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def session_cookie(self, name: str, session_id: str, now: float | None = None) -> str:
        """A signed cookie value naming the user, its server-side session (evals.web.sessions)
        and its issue time."""
        body = json.dumps(
            {"u": name, "iat": int(now or time.time()), "n": session_id}, separators=(",", ":")
        ).encode()
        return f"{_b64(body)}.{self._sign(body)}"

    def read_session(self, value: str, now: float | None = None) -> Principal | None:
        body_b64, _, signature = value.partition(".")
        try:
            body = _unb64(body_b64)
        except (binascii.Error, ValueError):
            return None
        if not signature or not _same(signature, self._sign(body)):
            return None
        data = json.loads(body)
        if (now or time.time()) - data["iat"] > SESSION_TTL_S:
            return None
        return Principal(name=data["u"], method="session", nonce=data["n"])

    def csrf_token(self, principal: Principal) -> str:
        return self._sign(f"csrf|{principal.method}|{principal.nonce}".encode())

    def authenticate(self, request: Request) -> Principal:
        """The caller behind a request, or AuthError."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential:
            if self.token_matches(credential.strip()):
                return Principal(name="api", method="bearer", nonce="bearer")
            raise AuthError("wrong token")
        if scheme.lower() == "basic" and credential:
            try:
                user, _, password = base64.b64decode(credential).decode().partition(":")
            except ValueError:  # binascii.Error, non-ASCII base64, or not UTF-8
                raise AuthError("malformed basic credentials") from None
            if self.token_matches(password):
                return Principal(name=user or "basic", method="basic", nonce=f"basic:{user}")
            raise AuthError("wrong token")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and (principal := self.read_session(cookie)):
            return principal
        raise AuthError("no credentials")

    def check_csrf(self, principal: Principal, submitted: str | None) -> None:
        if not principal.needs_csrf:
            return
        if not submitted or not _same(submitted, self.csrf_token(principal)):
            raise CsrfError("missing or invalid CSRF token")
