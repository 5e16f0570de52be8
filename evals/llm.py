"""LLM calls through LiteLLM: bounded, deadlined, retried once-and-only-once, measured, honest.

`LLMClient.acomplete` never raises for a provider problem: it returns a `CallResult` whose
status is ok, error or timeout, with the scrubbed error and the number of attempts, so the
caller can always write a row. The rules (see STACK_NOTES, "LiteLLM"):

- ONE retry loop, ours: LiteLLM/OpenAI retries are off (`max_retries=0`); we retry 429, 5xx,
  timeouts and connection errors with exponential backoff + full jitter, honouring Retry-After.
- `timeout` is per attempt; `asyncio.timeout` (wait_for's semantics without a task per call)
  around each attempt and around the whole call (`deadline_s`) makes both hard, whatever the
  provider SDK does.
- Per model: calls in flight are bounded (`concurrency`) and call starts spaced (`rpm`) by the
  client's `limits` (evals.limits): this process's own, a budget shared by the worker
  processes of one run, or one shared through the warehouse (`shared_limits: warehouse`).
- Tokens from the response's usage; cost from configured prices (per-token, also registered
  with LiteLLM so its callbacks agree), else LiteLLM's own price map (where custom providers
  register theirs), else None (never a guess).
- Every model is an ordinary LiteLLM model string. Custom providers (the offline simulator
  among them) are installed by the `custom_providers` named in the config and own everything
  about themselves: prices, clock, what they read from the call's metadata.
- The hot path does no logging and builds no clients: LiteLLM reuses its cached HTTP session.
- After the first import, the heap LiteLLM leaves is frozen (`gc.freeze`), so full garbage
  collections stop re-walking it mid-run, and while a pool of calls runs, young collections
  are sparser (`sparse_collections`); while no LiteLLM callback or budget is registered, our
  calls skip LiteLLM's async logging (nobody would receive it).

litellm is imported on first use (it takes seconds), never at module import.
"""

from __future__ import annotations

import asyncio
import email.utils
import gc
import random
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from evals.limits import process_limits
from evals.litellm_compat import (
    InlineRequestExecutor,
    acompletion_unlogged,
    custom_handler,
    defer_default_encoding,
    drain_logging_worker,
    hidden_params,
    observed,
    price_replies_once,
)
from evals.redact import scrub

if TYPE_CHECKING:
    from evals.config import Config, ModelConfig
    from evals.limits import LocalLimits, SharedLimits
    from evals.warehouse_limits import WarehouseLimits

T = TypeVar("T")

CALL_STATUSES = ("ok", "error", "timeout")
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 120.0
# The hard per-attempt timeout fires this long after the SDK's own per-attempt timeout, so the SDK reports first.
_ATTEMPT_GRACE_S = 0.5
_MAX_ERROR_CHARS = 2000
_WORKER_FLUSH_S = 5.0
_NO_KEY = "evalhouse-no-key"  # OpenAI-compatible local servers still want *some* api_key
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# Allocations between young collections while calls are in flight (CPython's default: 700).
SPARSE_GEN0_THRESHOLD = 50_000
# Evalhouse's tags ride in a LiteLLM call's `metadata` under this key: what the call is about
# (capture turns an app's into run-log columns; a custom provider may read the item's truth).
# LiteLLM keeps `metadata` on the client side: providers' HTTP requests never carry it.
METADATA_KEY = "evalhouse"


@dataclass(slots=True)
class CallResult:
    """The outcome of one logical call (all its attempts)."""

    text: str | None
    status: str
    started_at: datetime
    attempts: int
    latency_ms: float | None = None
    response_model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error_class: str | None = None
    error_message: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_litellm_lock = threading.Lock()
_litellm_state = {"registered": None, "warm": False}


def _quiet_and_lazy(litellm) -> None:
    """What every process of evalhouse sets on LiteLLM: no banners, no tokenizer until used,
    no second pricing of a reply it prices itself."""
    litellm.suppress_debug_info = True
    defer_default_encoding(litellm)
    price_replies_once()


def configured_litellm(config: Config):
    """Import LiteLLM, quietly, with this config's custom providers and prices registered.

    LiteLLM's provider map and price map are process-global: the last config registered wins
    (registering again only when the config differs: a provider may read any of it).
    """
    import importlib

    import litellm

    from evals.litellm_compat import register_prices

    key = config.model_dump_json()
    with _litellm_lock:
        if _litellm_state["registered"] != key:
            _quiet_and_lazy(litellm)
            for target in config.custom_providers:
                module, _, function = target.partition(":")
                getattr(importlib.import_module(module), function)(config)
            priced = {
                cfg.model: {
                    "input_cost_per_token": prices[0],
                    "output_cost_per_token": prices[1],
                    "litellm_provider": cfg.model.split("/", 1)[0],
                    "mode": "chat",
                }
                for cfg in config.models.values()
                if (prices := cfg.prices()) is not None
            }
            register_prices(litellm, priced)
            _litellm_state["registered"] = key
            if not _litellm_state["warm"]:
                _warm_up(litellm)
                _freeze_imported_heap()
                _litellm_state["warm"] = True
    return litellm


def preload_litellm(config: Config) -> None:
    """Import and configure LiteLLM in a background thread (~2 s), so a command's first call
    does not wait for it behind work that does not need it: migrations, loading the suite,
    planning and resuming. The first call that needs LiteLLM joins it (configured_litellm's
    lock); a failure here is left for that call to meet and report."""

    def load() -> None:
        try:
            configured_litellm(config)
        except Exception:  # reported by the first call, which configures again
            return

    threading.Thread(target=load, name="evalhouse-litellm-preload", daemon=True).start()


def model_string_problems(config: Config) -> list[str]:
    """One line per configured model whose LiteLLM string would fail or mislead at run time.

    Unroutable (no provider LiteLLM knows) is always wrong. A routable model that LiteLLM has
    no price for, with no price and no `api_base` of its own, is most often a typo
    (openai/gpt-4o-mnii): its calls would fail at the provider, or be recorded at unknown cost.
    """
    litellm = configured_litellm(config)
    problems = []
    for name, cfg in config.models.items():
        try:
            model, provider, _, _ = litellm.get_llm_provider(model=cfg.model, api_base=cfg.api_base)
        except Exception as exc:
            reason = (str(exc).splitlines() or ["unknown provider"])[0]
            problems.append(f"models.{name}.model: LiteLLM cannot route {cfg.model!r}: {reason}")
            continue
        known = {cfg.model, model, f"{provider}/{model}"} & litellm.model_cost.keys()
        if not known and cfg.api_base is None:
            problems.append(
                f"models.{name}.model: {cfg.model!r} is not in LiteLLM's model list"
                f" (provider {provider}): check the spelling, or set input_cost_per_token /"
                " output_cost_per_token (or api_base for a self-hosted server)"
            )
    return problems


def _freeze_imported_heap() -> None:
    """Move everything alive now (LiteLLM's ~380k module objects, imported for good) out of the
    cyclic GC's reach. Otherwise every full collection re-walks them: ~0.2 s with the event loop
    stopped, about 0.6-0.8 ms of CPU per call at C = 64 (docs/benchmarks.md). No collection
    first: after the import and warm-up one found nothing unreachable and cost 0.2 s of CPU on
    the way to the first request; cycles alive now that die later are never freed."""
    gc.freeze()


_sparse_lock = threading.Lock()
_sparse = {"depth": 0, "saved": (0, 0, 0)}


@contextmanager
def sparse_collections() -> Iterator[None]:
    """Collect young garbage every SPARSE_GEN0_THRESHOLD allocations, not every 700, while it
    is open (a run's pool of calls; the previous thresholds come back after the last one).

    At C = 256 a LiteLLM call allocates hundreds of containers and hundreds of calls are alive
    at once: with the default, collections (the older generations walking every in-flight
    call) took 0.17-0.36 ms of a call's ~2.5 ms of client CPU, with this 0.06-0.09 ms
    (docs/benchmarks.md). The memory cost is at most that many young objects uncollected."""
    with _sparse_lock:
        if _sparse["depth"] == 0:
            _sparse["saved"] = gc.get_threshold()
            gc.set_threshold(SPARSE_GEN0_THRESHOLD, *_sparse["saved"][1:])
        _sparse["depth"] += 1
    try:
        yield
    finally:
        with _sparse_lock:
            _sparse["depth"] -= 1
            if _sparse["depth"] == 0:
                gc.set_threshold(*_sparse["saved"])


_WARM_UP_REQUEST = {
    "model": "openai/evalhouse-warm-up",
    "mock_response": "warm",
    "messages": [{"role": "user", "content": "hi"}],
}


def _warm_up(litellm) -> None:
    """One offline (mocked) completion: LiteLLM imports ~1 s of modules on its first one, which
    would otherwise land on the first wave of real calls' latency."""
    try:
        litellm.completion(**_WARM_UP_REQUEST)
    except Exception:  # a failed warm-up warmed up anyway
        pass


def run_calls(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` for a coroutine that makes LLM calls: its loop builds LiteLLM's requests
    on its own thread instead of handing each to a pool thread (InlineRequestExecutor)."""
    with asyncio.Runner() as runner:
        _build_requests_inline(runner.get_loop())
        return runner.run(main)


def _build_requests_inline(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_default_executor(InlineRequestExecutor(thread_name_prefix="asyncio"))


def warm_litellm_before_fork() -> None:
    """Import and warm LiteLLM up in a process that forks workers (a run's fork server), leaving
    it with one thread, so that its workers skip their own warm-up.

    Through the async unlogged path in an event loop of its own (the path of a worker's calls):
    the sync warm-up starts LiteLLM's logging thread pool, and a worker forked while one of its
    threads held a lock hung at its first call (docs/benchmarks.md)."""
    import litellm

    with _litellm_lock:
        if _litellm_state["warm"]:
            return
        _quiet_and_lazy(litellm)
        try:
            run_calls(acompletion_unlogged(litellm, _WARM_UP_REQUEST))
        except Exception:  # a failed warm-up warmed up anyway
            pass
        _freeze_imported_heap()
        _litellm_state["warm"] = True


async def _acompletion(litellm, request: Mapping[str, Any], *, priced: bool):
    """`litellm.acompletion`, without LiteLLM's async logging when nothing observes the call.

    That logging (the Logging payload, a second cost calculation, a logging-worker task) costs
    ~0.8 ms of CPU per call (docs/benchmarks.md) that only callbacks consume; tokens, cost and
    latency we take from the response ourselves. With any callback registered nothing changes.
    Unobserved, a reply whose model has configured prices (`priced`: LLMClient._cost prices it
    from its tokens) is not priced by LiteLLM too."""
    if observed(litellm, request):
        return await litellm.acompletion(**request)
    return await acompletion_unlogged(litellm, request, priced_by_caller=priced)


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (Retry-After: seconds or HTTP date), if any."""
    headers = getattr(exc, "litellm_response_headers", None)
    if not headers:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(exc: BaseException) -> tuple[str, bool]:
    """(status, retryable) for an exception raised by an attempt."""
    import litellm

    if isinstance(exc, asyncio.TimeoutError | TimeoutError | litellm.Timeout):
        return "timeout", True
    if isinstance(
        exc,
        litellm.APIConnectionError
        | litellm.RateLimitError
        | litellm.InternalServerError
        | litellm.ServiceUnavailableError,
    ):
        return "error", True
    status_code = getattr(exc, "status_code", None)
    if isinstance(status_code, int):
        # A 2xx that is an error is a reply whose body did not parse (LiteLLM's own HTTP
        # handler reports it so; the OpenAI SDK as a 500): as transient as a reset.
        return "error", status_code >= 500 or status_code < 300 or status_code in _RETRYABLE_STATUS
    # An exception without a status is a transport-level failure (reset, refused, bad body).
    return "error", isinstance(exc, ConnectionError | OSError)


def backoff_s(attempt: int, retry_after: float | None, scale: float = 1.0) -> float:
    """Full-jitter exponential backoff; a Retry-After is a floor, capped at RETRY_AFTER_CAP_S."""
    delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))) * scale
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP_S))
    return delay


class LLMClient:
    """Calls configured models through LiteLLM; one client per process is enough."""

    def __init__(
        self, config: Config, limits: LocalLimits | SharedLimits | WarehouseLimits | None = None
    ) -> None:
        self.config = config
        self._own_limits = limits is None  # else the caller closes them
        self.limits = limits or process_limits(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._lib = None  # litellm, imported and configured on first use
        self._unpriced: set[str] = set()  # models LiteLLM has no price for

    def _load(self):
        self._lib = configured_litellm(self.config)
        return self._lib

    def _request(
        self,
        cfg: ModelConfig,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        response_format: Mapping[str, Any] | None,
        timeout: float,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {**cfg.params, **(params or {})}
        request.update(
            model=cfg.model,
            messages=[dict(message) for message in messages],  # LiteLLM may edit them in place
            timeout=timeout,
            max_retries=0,
        )
        if response_format is not None and cfg.json_mode:
            request["response_format"] = dict(response_format)
        if metadata:
            request["metadata"] = dict(metadata)
        if cfg.api_base:
            request["api_base"] = cfg.api_base
        api_key = cfg.api_key()
        if api_key or cfg.api_base:
            request["api_key"] = api_key or _NO_KEY
        return request

    def _cost(
        self,
        litellm,
        cfg: ModelConfig,
        response,
        hidden: Mapping[str, Any],
        input_tokens: int | None,
        output_tokens: int | None,
    ) -> float | None:
        if (prices := cfg.prices()) is not None:
            return (input_tokens or 0) * prices[0] + (output_tokens or 0) * prices[1]
        if hidden.get("response_cost") is not None:  # LiteLLM priced it already (its cost map)
            return float(hidden["response_cost"])
        if cfg.model in self._unpriced:
            return None
        try:
            return float(litellm.completion_cost(completion_response=response, model=cfg.model))
        except Exception:  # unknown price: say so (None) rather than record a made-up 0
            # Asked once per model LiteLLM has no price for: the failing lookup walks its whole
            # price map (~11 % of a call's client CPU at C = 256), and the map does not change
            # while this client runs. A priced model's failure (a reply without usage) is not.
            if not {cfg.model, cfg.model.split("/", 1)[-1]} & litellm.model_cost.keys():
                self._unpriced.add(cfg.model)
            return None

    def _backoff_scale(self, litellm, cfg: ModelConfig) -> float:
        """A custom provider on a clock of its own (the simulator's time_scale) says so with a
        `backoff_scale`; back-offs are waited in its time. Real providers: real seconds."""
        return float(getattr(custom_handler(litellm, cfg.model), "backoff_scale", 1.0))

    # --- calls ----------------------------------------------------------------------------

    async def acomplete(
        self,
        model_name: str,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> CallResult:
        """One logical call with retries; never raises for provider failures."""
        cfg = self.config.model(model_name)
        missing = cfg.missing_key_env()
        if missing is not None:  # refused, not sent: LiteLLM would fall back to another key
            return CallResult(
                text=None,
                status="error",
                started_at=datetime.now(UTC),
                attempts=0,
                latency_ms=0.0,
                error_class="MissingCredential",
                error_message=f"environment variable {missing} (api_key_env of model"
                f" {model_name!r}) is not set; the call was not sent",
                timings={"queued_ms": 0.0, "call_ms": 0.0, "backoff_ms": 0.0},
            )
        litellm = self._lib or self._load()
        started_at = datetime.now(UTC)
        entered = time.perf_counter()
        progress = {"attempts": 0, "last_exc": None, "attempt_started": entered, "backoff": 0.0}
        async with self.limits.slot(model_name, cfg):
            begun = time.perf_counter()
            try:
                async with asyncio.timeout(cfg.deadline_s):
                    result = await self._attempts(
                        litellm,
                        model_name,
                        cfg,
                        messages,
                        params,
                        metadata,
                        response_format,
                        started_at,
                        progress,
                    )
            except TimeoutError:
                exc = progress["last_exc"]
                result = CallResult(
                    text=None,
                    status="timeout",
                    started_at=started_at,
                    attempts=progress["attempts"],
                    latency_ms=(time.perf_counter() - progress["attempt_started"]) * 1000,
                    error_class="DeadlineExceeded",
                    error_message=scrub(
                        f"no reply within the {cfg.deadline_s:g} s deadline"
                        + (f" (last error: {type(exc).__name__}: {exc})" if exc else "")
                    )[:_MAX_ERROR_CHARS],
                )
        done = time.perf_counter()
        result.timings = {
            "queued_ms": round((begun - entered) * 1000, 3),
            "call_ms": round((done - begun) * 1000, 3),
            "backoff_ms": round(progress["backoff"] * 1000, 3),
        }
        return result

    async def _attempts(
        self,
        litellm,
        model_name: str,
        cfg: ModelConfig,
        messages,
        params,
        metadata,
        response_format,
        started_at: datetime,
        progress: dict,
    ) -> CallResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.deadline_s
        while True:
            if cfg.rpm:
                await self.limits.pace(model_name, cfg)
            progress["attempts"] += 1
            attempt = progress["attempts"]
            timeout = max(0.001, min(cfg.timeout_s, deadline - loop.time()))
            request = self._request(cfg, messages, params, metadata, response_format, timeout)
            if metadata is not None and METADATA_KEY in metadata:
                # Tagged calls say which attempt this is (a simulator draws faults per attempt).
                request["metadata"] = {
                    **metadata,
                    METADATA_KEY: {**metadata[METADATA_KEY], "attempt": attempt},
                }
            progress["attempt_started"] = time.perf_counter()
            try:
                async with asyncio.timeout(timeout + _ATTEMPT_GRACE_S):
                    response = await _acompletion(litellm, request, priced=cfg.prices() is not None)
            except Exception as exc:
                latency_ms = (time.perf_counter() - progress["attempt_started"]) * 1000
                progress["last_exc"] = exc
                status, retryable = classify(exc)
                delay = backoff_s(attempt, retry_after_s(exc), self._backoff_scale(litellm, cfg))
                if not retryable or attempt >= cfg.max_attempts or loop.time() + delay >= deadline:
                    return CallResult(
                        text=None,
                        status=status,
                        started_at=started_at,
                        attempts=attempt,
                        latency_ms=latency_ms,
                        error_class=type(exc).__name__,
                        error_message=(scrub(str(exc)) or "")[:_MAX_ERROR_CHARS] or None,
                    )
                progress["backoff"] += delay
                await asyncio.sleep(delay)
                continue
            latency_ms = (time.perf_counter() - progress["attempt_started"]) * 1000
            return self._answered(litellm, cfg, response, started_at, attempt, latency_ms)

    def _answered(
        self,
        litellm,
        cfg: ModelConfig,
        response,
        started_at: datetime,
        attempts: int,
        latency_ms: float,
    ) -> CallResult:
        """The result of the attempt that answered: its text, usage, provider and cost."""
        usage = getattr(response, "usage", None)
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        hidden = hidden_params(response)
        return CallResult(
            text=response.choices[0].message.content or "",
            status="ok",
            started_at=started_at,
            attempts=attempts,
            latency_ms=latency_ms,
            response_model=getattr(response, "model", None),
            provider=hidden.get("custom_llm_provider") or cfg.model.split("/", 1)[0],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=self._cost(litellm, cfg, response, hidden, input_tokens, output_tokens),
        )

    # --- sync use -------------------------------------------------------------------------

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._thread_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                _build_requests_inline(loop)
                thread = threading.Thread(
                    target=loop.run_forever, name="evalhouse-llm", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run_sync(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the client's own loop thread (limits shared by all threads)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._background_loop()).result()

    def complete(
        self,
        model_name: str,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> CallResult:
        """`acomplete` for synchronous callers (safe from many threads at once)."""
        return self.run_sync(
            self.acomplete(model_name, messages, params, metadata, response_format)
        )

    async def aclose(self) -> None:
        """Before the running loop ends: let LiteLLM's logging worker finish its callbacks (a
        capture callback writes rows there), stop it, and close the cached async HTTP clients;
        else the loop closes under them and they leak sockets and warnings."""
        import litellm

        await drain_logging_worker(_WORKER_FLUSH_S)
        await litellm.close_litellm_async_clients()
        if self._own_limits:
            await self.limits.aclose()

    def close(self) -> None:
        """Stop the background loop used by `complete`, closing its HTTP clients first."""
        with self._thread_lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
