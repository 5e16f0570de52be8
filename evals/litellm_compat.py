"""Every LiteLLM hook beyond `completion` that evalhouse leans on, in one place.

Private names (`_internal_context`, `_async_*_callback`, `_hidden_params`), the logging worker,
the callback lists and the custom-provider map move between LiteLLM releases without notice.
Only this module touches them; `tests/test_litellm_compat.py` checks each against the installed
LiteLLM, so an upgrade that drops one fails there, by name, instead of deep inside a run.

Functions take the imported `litellm` module where the caller already has it: importing LiteLLM
costs seconds, and this module must stay free to import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

_CALLBACK_PARAMS = ("callbacks", "success_callback", "failure_callback")
# LiteLLM's switch (read from the environment on every call) that sends OpenAI and
# OpenAI-compatible chat calls through its own HTTP handler instead of the OpenAI SDK.
OPENAI_HTTP_HANDLER_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"
INLINE_REQUEST_PROVIDERS = frozenset(
    {
        "anthropic",
        "cerebras",
        "deepseek",
        "fireworks_ai",
        "gemini",
        "groq",
        "hosted_vllm",
        "mistral",
        "openai",
        "openrouter",
        "together_ai",
        "xai",
    }
)
"""Providers whose request building is pure CPU (an API key in a header, a JSON body), so it
may run on the event loop's thread (`InlineRequestExecutor`); custom handlers count too. Bedrock,
Vertex AI and Azure AD sign requests or fetch credentials while building them, with blocking I/O
that must not stall a loop: they, and model names without a provider prefix, keep the thread."""


def observed(litellm, request: Mapping[str, Any]) -> bool:
    """Whether anything could receive LiteLLM's logging of this call: a registered callback
    (capture, an observability integration), one passed with the call, or a budget."""
    return bool(
        litellm.callbacks
        or litellm.success_callback
        or litellm._async_success_callback
        or litellm.failure_callback
        or litellm._async_failure_callback
        or litellm.max_budget
        or any(request.get(name) for name in _CALLBACK_PARAMS)
    )


_PRICED_BY_CALLER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "evalhouse_priced_by_caller", default=False
)


async def acompletion_unlogged(
    litellm, request: Mapping[str, Any], *, priced_by_caller: bool = False
):
    """`litellm.acompletion` marked as one of LiteLLM's internal calls, which skips its async
    success/failure logging. The flag is a context variable, set and reset around this one
    await, so it never touches an app's calls.

    `priced_by_caller`: the caller prices the reply itself (from its tokens and configured
    prices), so LiteLLM does not price it too (`price_replies_once`); the reply's hidden
    `response_cost` is then None."""
    from litellm._internal_context import is_internal_call

    token = is_internal_call.set(True)
    priced = _PRICED_BY_CALLER.set(priced_by_caller)
    try:
        return await litellm.acompletion(**request)
    finally:
        _PRICED_BY_CALLER.reset(priced)
        is_internal_call.reset(token)


def price_replies_once() -> None:
    """Let a call made with `acompletion_unlogged(..., priced_by_caller=True)` skip LiteLLM's
    pricing of its reply.

    LiteLLM prices every reply as it arrives (`Logging.response_cost_calculator`, for the
    reply's hidden `response_cost`), with no switch to turn that off: a walk through its price
    map and cost rules that took ~10 % of a call's client CPU at C = 256 (docs/benchmarks.md),
    wasted on a model whose prices the config gives. Wrapped once per process: inside such a
    call it answers None at once; everywhere else (an app's own calls, any observed call) it
    runs as before. A LiteLLM without that method is left as it is (tests/test_litellm_compat.py
    says so by name)."""
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except ImportError:
        return
    price = getattr(Logging, "response_cost_calculator", None)
    if price is None or getattr(price, "skips_caller_priced", False):
        return

    @functools.wraps(price)
    def response_cost_calculator(self, *args: Any, **kwargs: Any) -> float | None:
        if _PRICED_BY_CALLER.get():
            return None
        return price(self, *args, **kwargs)

    response_cost_calculator.skips_caller_priced = True
    Logging.response_cost_calculator = response_cost_calculator


class InlineRequestExecutor(concurrent.futures.ThreadPoolExecutor):
    """An event loop's default executor that builds LiteLLM's requests on the loop's own thread.

    `litellm.acompletion` hands its sync `completion(..., acompletion=True)` to the loop's
    default executor: ~1 ms of CPU that builds the request and returns the coroutine that sends
    it, no I/O for the providers of INLINE_REQUEST_PROVIDERS. On a pool thread it contends with
    the event loop for the GIL: one process at C = 256 made 68-71 % of C/L that way and 81-85 %
    with it inline (docs/benchmarks.md). Anything else submitted (other providers, `asyncio.to_thread`,
    DNS lookups) runs on the pool's threads as before."""

    def submit(self, fn, /, *args, **kwargs):
        if not builds_request_inline(fn):
            return super().submit(fn, *args, **kwargs)
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # as on a pool thread: the caller's await raises it
            future.set_exception(exc)
        return future


def builds_request_inline(fn: Any) -> bool:
    """Whether `fn` is LiteLLM's request building for a provider that does no I/O in it.

    `acompletion` submits `partial(Context.run, partial(litellm.main.completion, **request))`;
    a LiteLLM that submits anything else is not recognised and keeps its thread."""
    main = sys.modules.get("litellm.main")
    building = fn.args[0] if isinstance(fn, functools.partial) and fn.args else None
    if (
        main is None
        or not isinstance(building, functools.partial)
        or building.func is not getattr(main, "completion", None)
    ):
        return False
    model = str(building.keywords.get("model") or "")
    provider = building.keywords.get("custom_llm_provider") or (
        model.split("/", 1)[0] if "/" in model else None
    )
    if provider in INLINE_REQUEST_PROVIDERS:
        return True
    litellm = sys.modules["litellm"]
    return any(entry.get("provider") == provider for entry in litellm.custom_provider_map)


def prefer_litellm_http_handler() -> None:
    """Send this process's OpenAI(-compatible) chat calls through LiteLLM's own HTTP handler.

    Same request and the same ModelResponse, without the OpenAI SDK's request building,
    response-model construction and httpx cookie jar: ~0.8 ms less client CPU per call at
    C = 256 (docs/benchmarks.md). It is process-wide, so only evalhouse's own processes (the
    CLI and its workers) switch it on; an app that imports evals keeps the SDK. A value
    already in the environment wins (`false` keeps the SDK)."""
    os.environ.setdefault(OPENAI_HTTP_HANDLER_ENV, "true")


class _DeferredEncoding:
    """LiteLLM's default tokenizer, loaded by the first use of any of its attributes."""

    def __getattr__(self, name: str) -> Any:
        # litellm.main loads it on first access and puts it in the cache this stood in
        return getattr(sys.modules["litellm.main"].encoding, name)


def defer_default_encoding(litellm) -> None:
    """Load LiteLLM's default tokenizer (tiktoken's cl100k) when something uses it, not on the
    first call. LiteLLM hands it to every provider call and loads it on the first: ~0.2 s of
    base64 decoding in Python before the first request goes out, and tens of MB in each
    process, though only providers whose replies carry no token counts use it. A LiteLLM
    without that cache is left as it is (tests/test_litellm_compat.py says so by name)."""
    main = litellm.main
    if getattr(main, "_encoding_cache", False) is None:
        main._encoding_cache = _DeferredEncoding()


def hidden_params(response: Any) -> Mapping[str, Any]:
    """LiteLLM's side-channel on a response: `custom_llm_provider`, `response_cost`, ..."""
    return getattr(response, "_hidden_params", None) or {}


async def drain_logging_worker(timeout_s: float) -> None:
    """Let LiteLLM's logging worker finish queued callbacks (bounded), then stop it."""
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout_s)
    except TimeoutError:
        pass
    await GLOBAL_LOGGING_WORKER.stop()


def add_callback(litellm, callback: Any) -> None:
    """Register a `CustomLogger` for every call in the process (once)."""
    if callback not in litellm.callbacks:
        litellm.callbacks.append(callback)


def remove_callback(litellm, callback: Any) -> None:
    """Unregister a `CustomLogger` everywhere. LiteLLM copies `callbacks` into its success and
    failure lists on first use and refuses a second logger of the same class while the first
    is listed, so removing it from `callbacks` alone is not enough."""
    litellm.logging_callback_manager.remove_callback_from_all_lists(callback)


def install_custom_provider(litellm, provider: str, handler: Any) -> None:
    """Make `handler` (a `CustomLLM`) answer `<provider>/<model>`, replacing an earlier one."""
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry.get("provider") != provider
    ] + [{"provider": provider, "custom_handler": handler}]


def custom_handler(litellm, model: str) -> Any | None:
    """The `CustomLLM` registered for a LiteLLM model string's provider prefix, if any."""
    provider = model.split("/", 1)[0]
    return next(
        (
            entry["custom_handler"]
            for entry in litellm.custom_provider_map
            if entry.get("provider") == provider
        ),
        None,
    )


def register_prices(litellm, models: dict[str, dict[str, Any]]) -> None:
    """`litellm.register_model` without its per-model warning about cache-token prices."""
    if not models:
        return
    logger = logging.getLogger("LiteLLM")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        litellm.register_model(models)
    finally:
        logger.setLevel(level)
