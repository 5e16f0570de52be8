"""`evalhouse models check`: one tiny call per configured model, its outcome stored.

The call goes through `evals.llm.LLMClient` with one attempt and a short deadline, so a check
says what the next real call would meet: reachable or not, which model answered, how fast, and
why not (auth, not found, rate limited, unreachable), never retried into a false "ok". Messages
pass the shared scrubber (a provider may echo the key). Results go to raw.model_checks, whose
last row per model the API's /models shows; this module is that table's one writer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.redact import scrub

if TYPE_CHECKING:
    import psycopg

    from evals.config import Config
    from evals.llm import CallResult

CHECK_DEADLINE_S = 20.0
_PING = [{"role": "user", "content": "Reply with the single word: ok"}]
ERROR_CLASSES = ("auth", "not_found", "rate_limited", "unreachable", "error")


@dataclass(frozen=True)
class ModelCheck:
    """One model's check: the configured name and LiteLLM model, and what the call met."""

    model_name: str
    litellm_model: str
    ok: bool
    response_model: str | None
    latency_ms: float | None
    error_class: str | None
    error_message: str | None


def error_class(exception_name: str | None, message: str | None) -> str:
    """The check's error class from LiteLLM's exception class (and, for a status-less failure,
    its message): what an operator must do differs for each."""
    name = exception_name or ""
    if name in ("AuthenticationError", "PermissionDeniedError"):
        return "auth"
    if name == "NotFoundError":
        return "not_found"
    if name == "RateLimitError":
        return "rate_limited"
    if name in ("APIConnectionError", "Timeout", "DeadlineExceeded", "ServiceUnavailableError"):
        return "unreachable"
    text = (message or "").lower()
    if name == "InternalServerError" and ("connect" in text or "refused" in text):
        return "unreachable"  # LiteLLM reports a refused connection as InternalServerError
    return "error"


def _outcome(name: str, litellm_model: str, result: CallResult) -> ModelCheck:
    if result.ok:
        return ModelCheck(
            name, litellm_model, True, result.response_model, result.latency_ms, None, None
        )
    return ModelCheck(
        model_name=name,
        litellm_model=litellm_model,
        ok=False,
        response_model=None,
        latency_ms=result.latency_ms,
        error_class=error_class(result.error_class, result.error_message),
        error_message=scrub(result.error_message or result.error_class or "")[:500],
    )


def check_models(config: Config, names: list[str] | None = None) -> list[ModelCheck]:
    """Check `names` (default: every configured model) concurrently; never raises for a
    provider failure. Unknown names raise ConfigError (via `config.model`)."""
    from evals.llm import LLMClient, run_calls

    names = list(names or config.models)
    one_attempt = {
        name: config.model(name).model_copy(
            update={
                "max_attempts": 1,
                "json_mode": False,
                "deadline_s": min(CHECK_DEADLINE_S, config.model(name).deadline_s),
                "timeout_s": min(CHECK_DEADLINE_S, config.model(name).timeout_s),
            }
        )
        for name in names
    }
    client = LLMClient(config.model_copy(update={"models": {**config.models, **one_attempt}}))

    async def check_all() -> list[CallResult]:
        return await asyncio.gather(
            *(client.acomplete(name, _PING, params={"max_tokens": 5}) for name in names)
        )

    results = run_calls(check_all())
    return [
        _outcome(name, one_attempt[name].model, result)
        for name, result in zip(names, results, strict=True)
    ]


def store_checks(conn: psycopg.Connection, checks: list[ModelCheck]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into raw.model_checks (model_name, litellm_model, ok, response_model,"
            " latency_ms, error_class, error_message) values (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    c.model_name,
                    c.litellm_model,
                    c.ok,
                    c.response_model,
                    c.latency_ms,
                    c.error_class,
                    c.error_message,
                )
                for c in checks
            ],
        )


LATEST_SQL = (
    "select distinct on (model_name) model_name, litellm_model, checked_at, ok, response_model,"
    " latency_ms, error_class, error_message from raw.model_checks"
    " order by model_name, checked_at desc"
)
"""The last check of every model that was ever checked."""
