"""Version guard for evals/litellm_compat.py: what it relies on exists in the installed LiteLLM
and still behaves the way the module says. A LiteLLM upgrade that moves one of these fails here,
by name, rather than as a slow or silently uncaptured run.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import os
import re
import subprocess
import sys
import threading
from importlib.metadata import version

import pytest
from conftest import REPO_ROOT
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)

from evals import litellm_compat as compat
from evals.config import Config
from evals.llm import LLMClient, run_calls

PROVIDER = "compat-probe"
PRICES = {"input_cost_per_token": 2e-6, "output_cost_per_token": 5e-6}


@pytest.fixture
def litellm():
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@pytest.fixture
def probe(litellm):
    """A CustomLLM that echoes what it received, installed under PROVIDER for one test."""
    from litellm import CustomLLM

    class Probe(CustomLLM):
        def __init__(self) -> None:
            super().__init__()
            self.litellm_params: list[dict] = []

        async def acompletion(
            self, model, messages, model_response, optional_params, litellm_params, **_
        ):
            self.litellm_params.append(dict(litellm_params or {}))
            model_response.choices[0].message.content = "ok"
            model_response.usage = litellm.Usage(
                prompt_tokens=100, completion_tokens=10, total_tokens=110
            )
            return model_response

    saved = list(litellm.custom_provider_map)
    handler = Probe()
    compat.install_custom_provider(litellm, PROVIDER, handler)
    compat.register_prices(
        litellm, {f"{PROVIDER}/m": {**PRICES, "litellm_provider": PROVIDER, "mode": "chat"}}
    )
    yield handler
    litellm.custom_provider_map = saved


def test_the_private_names_the_module_uses_exist(litellm) -> None:
    from litellm._internal_context import is_internal_call
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    assert version("litellm").split(".")[0] == "1"
    assert isinstance(is_internal_call, contextvars.ContextVar)
    assert is_internal_call.get() is False
    for name in (
        "callbacks",
        "success_callback",
        "failure_callback",
        "_async_success_callback",
        "_async_failure_callback",
        "custom_provider_map",
    ):
        assert isinstance(getattr(litellm, name), list), name
    assert hasattr(litellm, "max_budget")
    assert inspect.iscoroutinefunction(GLOBAL_LOGGING_WORKER.flush)
    assert inspect.iscoroutinefunction(GLOBAL_LOGGING_WORKER.stop)
    assert callable(litellm.logging_callback_manager.remove_callback_from_all_lists)
    assert callable(litellm.register_model)


def test_a_custom_provider_gets_the_metadata_and_its_registered_price(litellm, probe) -> None:
    async def call():
        return await compat.acompletion_unlogged(
            litellm,
            {
                "model": f"{PROVIDER}/m",
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"evalhouse": {"expected_verdict": "pass"}},
            },
        )

    response = asyncio.run(call())
    assert compat.custom_handler(litellm, f"{PROVIDER}/m") is probe
    assert compat.custom_handler(litellm, "openai/gpt-4o-mini") is None
    assert probe.litellm_params[0]["metadata"] == {"evalhouse": {"expected_verdict": "pass"}}
    hidden = compat.hidden_params(response)
    assert hidden["custom_llm_provider"] == PROVIDER
    assert hidden["response_cost"] == pytest.approx(100 * 2e-6 + 10 * 5e-6)


def test_only_a_call_its_caller_prices_skips_litellms_pricing_of_the_reply(litellm, probe) -> None:
    from litellm.litellm_core_utils.litellm_logging import Logging

    compat.price_replies_once()
    compat.price_replies_once()  # once per process: a second call wraps nothing more
    assert not hasattr(Logging.response_cost_calculator.__wrapped__, "skips_caller_priced")
    request = {"model": f"{PROVIDER}/m", "messages": [{"role": "user", "content": "hi"}]}

    async def calls():
        replies = (
            await compat.acompletion_unlogged(litellm, request, priced_by_caller=True),
            await compat.acompletion_unlogged(litellm, request),
            await litellm.acompletion(**request),  # an app's own call, after ours
        )
        await compat.drain_logging_worker(5.0)  # its logging, before another test's callback
        return replies

    by_caller, unlogged, app = (compat.hidden_params(r) for r in asyncio.run(calls()))
    assert by_caller["response_cost"] is None
    assert unlogged["response_cost"] == pytest.approx(100 * 2e-6 + 10 * 5e-6)
    assert app["response_cost"] == pytest.approx(100 * 2e-6 + 10 * 5e-6)


def test_unlogged_calls_skip_callbacks_and_a_removed_callback_is_gone_everywhere(
    litellm, probe
) -> None:
    from litellm._internal_context import is_internal_call
    from litellm.integrations.custom_logger import CustomLogger

    class Seen(CustomLogger):
        def __init__(self) -> None:
            super().__init__()
            self.kwargs: list[dict] = []

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            self.kwargs.append(kwargs)

    seen = Seen()
    request = {
        "model": f"{PROVIDER}/m",
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"evalhouse": {"stage": "loops"}},
    }

    async def calls():
        await compat.acompletion_unlogged(litellm, request)
        assert is_internal_call.get() is False
        assert not compat.observed(litellm, request)
        compat.add_callback(litellm, seen)
        compat.add_callback(litellm, seen)
        assert compat.observed(litellm, request)
        await litellm.acompletion(**request)
        await compat.drain_logging_worker(5.0)

    try:
        asyncio.run(calls())
    finally:
        compat.remove_callback(litellm, seen)
    assert len(seen.kwargs) == 1
    # what evals.capture.callback reads from a logging event
    kwargs = seen.kwargs[0]
    assert kwargs["litellm_params"]["metadata"]["evalhouse"] == {"stage": "loops"}
    assert kwargs["litellm_call_id"] and kwargs["custom_llm_provider"] == PROVIDER
    assert kwargs["response_cost"] == pytest.approx(100 * 2e-6 + 10 * 5e-6)
    assert {"startTime", "model_parameters"} <= set(kwargs["standard_logging_object"])
    for name in (
        "callbacks",
        "success_callback",
        "failure_callback",
        "_async_success_callback",
        "_async_failure_callback",
    ):
        assert seen not in getattr(litellm, name), name
    assert not compat.observed(litellm, request)


def test_evalhouse_processes_send_openai_calls_past_the_sdk(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's switch (a LiteLLM environment setting, read per call) still sends the same
    call without the OpenAI SDK (whose x-stainless-* headers the server sees otherwise)."""
    monkeypatch.setenv(compat.OPENAI_HTTP_HANDLER_ENV, "unset")  # so teardown restores the original
    monkeypatch.delenv(compat.OPENAI_HTTP_HANDLER_ENV)
    client = LLMClient(
        Config.model_validate(
            {
                "models": {
                    "m": {
                        "model": "openai/fake-model",
                        "api_base": fake_openai.api_base,
                        "input_cost_per_token": 1e-6,
                        "output_cost_per_token": 2e-6,
                    }
                }
            }
        )
    )
    via_sdk = client.complete("m", [{"role": "user", "content": "grade sdk"}])
    compat.prefer_litellm_http_handler()
    direct = client.complete("m", [{"role": "user", "content": "grade direct"}])
    client.close()
    sdk_headers, direct_headers = (r["headers"] for r in fake_openai.requests[-2:])
    assert "x-stainless-lang" in sdk_headers and "x-stainless-lang" not in direct_headers
    assert (via_sdk.status, direct.status) == ("ok", "ok")
    assert (direct.input_tokens, direct.cost_usd) == (
        len("grade direct") // 4 + 1,
        pytest.approx(direct.input_tokens * 1e-6 + direct.output_tokens * 2e-6),
    )
    monkeypatch.setenv(compat.OPENAI_HTTP_HANDLER_ENV, "false")  # a value already set wins
    compat.prefer_litellm_http_handler()
    assert os.environ[compat.OPENAI_HTTP_HANDLER_ENV] == "false"


async def _threads_started_by_calls(litellm, api_base: str, n: int) -> list[str]:
    """Make n calls to the fake server at once; the names of the threads they started."""
    request = {
        "model": "openai/fake-model",
        "api_base": api_base,
        "api_key": "k",
        "messages": [{"role": "user", "content": "grade"}],
    }
    before = set(threading.enumerate())
    responses = await asyncio.gather(
        *(compat.acompletion_unlogged(litellm, request) for _ in range(n))
    )
    assert all(r.choices[0].message.content for r in responses)
    return [thread.name for thread in set(threading.enumerate()) - before]


def test_the_runs_loops_build_litellm_requests_on_their_own_thread(
    litellm, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM's acompletion still hands its request building to the loop's default executor
    (a plain loop starts a pool thread for it); under `run_calls` the same calls start none.
    Through LiteLLM's HTTP handler, as evalhouse's processes call (the OpenAI SDK also sends a
    one-off platform probe to a thread)."""
    monkeypatch.setenv(compat.OPENAI_HTTP_HANDLER_ENV, "true")
    plain = asyncio.run(_threads_started_by_calls(litellm, fake_openai.api_base, 8))
    inline = run_calls(_threads_started_by_calls(litellm, fake_openai.api_base, 8))
    assert any(name.startswith("asyncio_") for name in plain)
    assert inline == []
    assert len(fake_openai.requests) == 16


def test_run_calls_keeps_other_executor_work_on_a_thread() -> None:
    async def where_to_thread_runs() -> tuple[int, int]:
        return threading.get_ident(), await asyncio.to_thread(threading.get_ident)

    loop_thread, worker_thread = run_calls(where_to_thread_runs())
    assert loop_thread != worker_thread


@pytest.mark.parametrize(
    ("model", "inline"),
    [
        ("openai/gpt-4o-mini", True),
        ("anthropic/claude-sonnet", True),
        (f"{PROVIDER}/m", True),  # a custom handler
        ("bedrock/anthropic.claude-v2", False),  # signs with AWS credentials while building
        ("vertex_ai/gemini-pro", False),  # fetches a Google access token while building
        ("gpt-4o-mini", False),  # no prefix: the provider is LiteLLM's guess
    ],
)
def test_only_requests_built_without_io_run_on_the_loop(litellm, probe, model, inline) -> None:
    building = functools.partial(
        contextvars.copy_context().run, functools.partial(litellm.main.completion, model=model)
    )
    assert compat.builds_request_inline(building) is inline
    assert not compat.builds_request_inline(functools.partial(print, model))


_FRAGILE = re.compile(
    r"litellm\._|_hidden_params|_internal_context|litellm_core_utils"
    r"|logging_callback_manager|custom_provider_map|BASE_LLM_HTTP_HANDLER|_encoding_cache"
)


_FIRST_CALL = """
import asyncio, json, sys
import litellm, litellm.main
from evals import litellm_compat as compat
compat.prefer_litellm_http_handler()
if sys.argv[2] == "deferred":
    compat.defer_default_encoding(litellm)
request = {"model": "openai/fake-model", "api_base": sys.argv[1], "api_key": "k",
           "messages": [{"role": "user", "content": "grade"}]}
reply = asyncio.run(compat.acompletion_unlogged(litellm, request))
loaded = "encoding" in vars(litellm.main)
tokens = litellm.main._get_encoding().encode("hello world")  # a provider counting tokens
import tiktoken
print(json.dumps({"tokens": reply.usage.total_tokens, "loaded_by_the_call": loaded,
                  "same_tokens": tokens == tiktoken.get_encoding("cl100k_base").encode("hello world"),
                  "real_one_cached": litellm.main._get_encoding() is litellm.main.encoding}))
"""


@pytest.mark.parametrize("tokenizer", ["deferred", "litellm's own"])
def test_a_first_call_loads_the_tokenizer_only_if_litellm_is_left_alone(
    fake_openai: FakeOpenAI, tokenizer: str
) -> None:
    """A fresh process each (the tokenizer, once loaded, stays): evalhouse's processes send
    their first request without it, and a provider that counts tokens still gets the real one."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL, fake_openai.api_base, tokenizer],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=True,
    )
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["tokens"] > 0
    assert outcome["loaded_by_the_call"] is (tokenizer != "deferred")
    assert outcome["same_tokens"] and outcome["real_one_cached"]


def test_no_other_module_touches_what_this_one_guards() -> None:
    touching = {
        path.relative_to(REPO_ROOT).as_posix()
        for folder in ("evals", "orchestration")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if _FRAGILE.search(path.read_text())
    }
    assert touching == {"evals/litellm_compat.py"}
