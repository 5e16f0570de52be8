"""Who may call the API: a Bearer token in the Authorization header, and nothing else.

No cookies (so no CSRF surface), no basic auth, and never a token in the query string (it ends
up in proxy and server logs): such a request is refused before anything else looks at it.
Accepted tokens: an API token from `evalhouse api token create` (checked by its hash against
raw.api_tokens, so a revoked token stops at once) or the operator's web token.

Each token has a token bucket in this process (`api.rate_per_minute`, `api.burst`): a request
beyond it gets 429 with Retry-After; every answer says what is left (RateLimit-* headers).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from evals import api_tokens
from evals.web.api.problems import Problem
from evals.web.deps import state

QUERY_CREDENTIALS = frozenset({"token", "access_token", "api_key", "apikey", "key", "bearer"})
_CHALLENGE = {"www-authenticate": 'Bearer realm="evalhouse-api"'}
BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (`evalhouse api token create`) or the operator's web token.",
)


@dataclass(frozen=True)
class ApiCaller:
    """The token behind a request: its name (recorded on acknowledgements and batches)."""

    name: str
    bucket_key: str


class RateLimiter:
    """Token buckets per API token: `rate_per_minute` sustained, `burst` at once."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> tuple[bool, int, float]:
        """(allowed, requests left, seconds until the next one is allowed)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s
        return allowed, int(tokens), wait


def refuse_query_credentials(request: Request) -> None:
    """Dependency of every API route: a credential-named query parameter is a 400."""
    named = sorted(QUERY_CREDENTIALS & {name.lower() for name in request.query_params})
    if named:
        raise Problem(
            400,
            f"credentials are not accepted in the query string ({', '.join(named)}); "
            "send them as 'Authorization: Bearer <token>'",
            slug="credentials-in-query",
        )


def identify(request: Request, token: str | None) -> ApiCaller | None:
    """The caller of a Bearer token, or None (no token, unknown or revoked)."""
    if not token:
        return None
    web = state(request)
    if web.guard.token_matches(token):
        return ApiCaller(name="operator", bucket_key="operator")
    if not token.startswith(api_tokens.TOKEN_PREFIX):
        return None
    found = web.db.one(api_tokens.LOOKUP_SQL, (api_tokens.token_hash(token),))
    if found is None:
        return None
    return ApiCaller(name=found["name"], bucket_key=f"token:{found['token_id']}")


def api_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(BEARER_SCHEME),
) -> ApiCaller:
    """Dependency of every API route: the authenticated, rate-limited caller, or 401 / 429."""
    refuse_query_credentials(request)
    token = credentials.credentials.strip() if credentials else None
    caller = identify(request, token)
    if caller is None:
        detail = (
            "missing 'Authorization: Bearer <token>'" if not token else "invalid or revoked token"
        )
        raise Problem(401, detail, slug="unauthenticated", headers=_CHALLENGE)
    limiter: RateLimiter = request.app.state.rate_limiter
    allowed, left, wait = limiter.take(caller.bucket_key)
    request.state.rate_limit = (limiter.rate_per_minute, left)
    if not allowed:
        raise Problem(
            429,
            f"rate limit of {limiter.rate_per_minute} requests per minute for this token",
            slug="rate-limited",
            headers={"retry-after": str(max(1, math.ceil(wait)))},
        )
    return caller
