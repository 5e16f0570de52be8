"""LLMClient over real LiteLLM + loopback HTTP, and the simulated provider.

Every fault the fake server can script ends in a CallResult with the right status and attempt
count; nothing raises, nothing leaks the key.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
from datetime import date

import pytest
from fake_openai import FakeOpenAI, fake_openai  # noqa: F401  (the fixture)

from evals.config import Config
from evals.litellm_compat import OPENAI_HTTP_HANDLER_ENV
from evals.llm import (
    SPARSE_GEN0_THRESHOLD,
    LLMClient,
    backoff_s,
    configured_litellm,
    sparse_collections,
)

SECRET = "sk-evalhouse-test-0123456789abcdefXYZ"
JSON_FORMAT = {"type": "json_object"}


def _config(server: FakeOpenAI, **model) -> Config:
    settings = {
        "model": "openai/fake-model",
        "api_base": server.api_base,
        "api_key_env": "FAKE_PROVIDER_API_KEY",
        "timeout_s": 2.0,
        "deadline_s": 6.0,
        "max_attempts": 3,
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        **model,
    }
    return Config.model_validate({"models": {"m": settings}})


def _ask(client: LLMClient, marker: str, model: str = "m"):
    """A graded call, tagged with its item's truth like every graded call."""
    return client.acomplete(
        model,
        [{"role": "user", "content": f"grade {marker}"}],
        metadata={"evalhouse": {"item_id": marker, "expected_verdict": "fail"}},
        response_format=JSON_FORMAT,
    )


@pytest.fixture(params=["openai-sdk", "litellm-http"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways LiteLLM sends an openai/ call: through the OpenAI SDK (an app's process) and
    through its own HTTP handler (evalhouse's CLI, prefer_litellm_http_handler)."""
    if request.param == "litellm-http":
        monkeypatch.setenv(OPENAI_HTTP_HANDLER_ENV, "true")
    else:
        monkeypatch.delenv(OPENAI_HTTP_HANDLER_ENV, raising=False)
    return request.param


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", SECRET)
    return SECRET


def test_each_fault_ends_with_the_right_status_and_attempts(
    fake_openai: FakeOpenAI,
    transport: str,
    keyed: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    fake_openai.retry_after = "0"
    fake_openai.slow_s = 10
    scripts = {
        "plain": ["ok"],
        "limited": ["rate_limit", "ok"],
        "broken": ["server_error"] * 3,
        "slow": ["slow"] * 3,
        "reset": ["reset", "ok"],
        "reset-always": ["reset"] * 3,
        "malformed": ["malformed"] * 3,
        "prose": ["not_json"],
    }
    for marker, behaviours in scripts.items():
        fake_openai.script(f'grade {marker}"', behaviours)
    client = LLMClient(_config(fake_openai, timeout_s=1.5, deadline_s=4.0))

    async def main():
        try:
            await _ask(client, "warm-up")  # first use imports the OpenAI path: not under test
            return await asyncio.gather(*(_ask(client, marker) for marker in scripts))
        finally:
            await client.aclose()

    with caplog.at_level(logging.INFO):
        results = dict(zip(scripts, asyncio.run(main()), strict=True))
    outcome = {name: (r.status, r.attempts) for name, r in results.items()}
    assert outcome["plain"] == ("ok", 1)
    assert outcome["limited"] == ("ok", 2)
    assert outcome["broken"] == ("error", 3)
    assert outcome["slow"][0] == "timeout" and outcome["slow"][1] >= 2
    assert outcome["reset"] == ("ok", 2)
    assert outcome["reset-always"] == ("error", 3)
    assert outcome["malformed"] == ("error", 3)
    assert outcome["prose"] == ("ok", 1)  # the transport is fine; judging makes it parse_error
    ok = results["plain"]
    assert json.loads(ok.text)["verdict"] == "pass"
    assert ok.response_model == "fake-model-2024-01-01" and ok.provider == "openai"
    # the fake server counts a token per 4 characters (of "grade plain", of the reply), plus one
    assert (ok.input_tokens, ok.output_tokens) == (
        len("grade plain") // 4 + 1,
        len(ok.text) // 4 + 1,
    )
    assert ok.cost_usd == pytest.approx(ok.input_tokens * 1e-6 + ok.output_tokens * 2e-6)
    assert set(ok.timings) == {"queued_ms", "call_ms", "backoff_ms"}
    assert results["broken"].error_class == "InternalServerError"
    # The server quotes the Authorization header and a ?key= URL in its 500: both scrubbed.
    assert "[REDACTED]" in results["broken"].error_message
    everything = json.dumps(
        [
            vars(r) if not hasattr(r, "__slots__") else {s: getattr(r, s) for s in r.__slots__}
            for r in results.values()
        ],
        default=str,
    )
    captured = capfd.readouterr()
    assert keyed not in everything
    assert keyed not in caplog.text and keyed not in captured.out + captured.err
    # The request really carried the key, and asked for JSON.
    sent = fake_openai.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {keyed}"
    assert sent["json"]["response_format"] == JSON_FORMAT
    # The call's metadata (the item's truth) stays in the client: the provider never sees it.
    assert "metadata" not in sent["json"] and "expected_verdict" not in json.dumps(sent)


def test_retry_after_is_honoured(fake_openai: FakeOpenAI, transport: str) -> None:
    fake_openai.retry_after = "1"
    fake_openai.script("grade wait", ["rate_limit", "ok"])
    client = LLMClient(_config(fake_openai))
    started = time.perf_counter()
    result = client.complete("m", [{"role": "user", "content": "grade wait"}])
    client.close()
    assert result.status == "ok" and result.attempts == 2
    assert time.perf_counter() - started >= 1.0
    assert result.timings["backoff_ms"] >= 1000


def test_concurrency_is_bounded_per_model(fake_openai: FakeOpenAI) -> None:
    fake_openai.latency_s = 0.15
    client = LLMClient(_config(fake_openai, concurrency=3))

    async def main():
        try:
            return await asyncio.gather(*(_ask(client, f"c{i}") for i in range(12)))
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert all(r.status == "ok" for r in results)
    assert fake_openai.max_in_flight == 3
    assert max(r.timings["queued_ms"] for r in results) >= 150


def test_litellm_logging_is_skipped_only_while_nobody_listens(fake_openai: FakeOpenAI) -> None:
    """Unobserved calls skip LiteLLM's async logging (a context flag, never left set); a registered
    callback (capture, an integration) still receives every call of ours."""
    import litellm
    from litellm._internal_context import is_internal_call
    from litellm.integrations.custom_logger import CustomLogger

    from evals.litellm_compat import remove_callback

    class Seen(CustomLogger):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            self.calls.append(kwargs["messages"][0]["content"])

    client = LLMClient(_config(fake_openai))
    seen = Seen()

    async def main():
        try:
            quiet = await _ask(client, "quiet")
            assert is_internal_call.get() is False
            litellm.callbacks.append(seen)
            return quiet, await _ask(client, "observed")
        finally:
            await client.aclose()
            remove_callback(litellm, seen)

    quiet, observed = asyncio.run(main())
    for result in (quiet, observed):  # priced by us either way, logged or not
        assert (result.status, result.cost_usd) == (
            "ok",
            pytest.approx(result.input_tokens * 1e-6 + result.output_tokens * 2e-6),
        )
    assert seen.calls == ["grade observed"]


def test_rpm_spaces_call_starts(fake_openai: FakeOpenAI) -> None:
    client = LLMClient(_config(fake_openai, rpm=600))  # one start every 0.1 s

    async def main():
        try:
            return await asyncio.gather(*(_ask(client, f"r{i}") for i in range(5)))
        finally:
            await client.aclose()

    asyncio.run(main())
    starts = sorted(request["at"] for request in fake_openai.requests)
    assert starts[-1] - starts[0] >= 0.35


def test_a_dead_server_is_an_error_row_not_an_exception(transport: str) -> None:
    config = Config.model_validate(
        {
            "models": {
                "m": {
                    "model": "openai/x",
                    "api_base": "http://127.0.0.1:9/v1",
                    "max_attempts": 2,
                    "timeout_s": 1,
                    "deadline_s": 3,
                }
            }
        }
    )
    result = LLMClient(config).complete("m", [{"role": "user", "content": "hi"}])
    assert result.status == "error" and result.attempts == 2
    # connection refused reaches us as LiteLLM's InternalServerError (STACK_NOTES), whose text
    # is the SDK's, or aiohttp's (it names the SSL context object: compared up to it)
    assert result.error_class == "InternalServerError"
    expected = {
        "openai-sdk": "OpenAIException - Connection error.",
        "litellm-http": "OpenAIException - Cannot connect to host 127.0.0.1:9 ssl:",
    }[transport]
    prefix = "litellm.InternalServerError: InternalServerError: "
    assert result.error_message[: len(prefix + expected)] == prefix + expected


def test_backoff_grows_and_respects_retry_after() -> None:
    assert backoff_s(1, None) <= 0.5
    assert backoff_s(10, None) <= 30
    assert backoff_s(1, 7.0) == 7.0
    assert backoff_s(1, 10_000.0) == 120.0


def register_flaky(config: Config) -> None:
    """A `custom_providers` entry: `flaky/…` fails every first attempt with a 500, and so does
    `flaky-fast/…`, whose handler runs on a clock of its own (`backoff_scale` 0)."""
    import litellm
    from litellm import CustomLLM
    from litellm.llms.custom_llm import CustomLLMError

    from evals.litellm_compat import install_custom_provider

    class Flaky(CustomLLM):
        async def acompletion(
            self, model, messages, model_response, optional_params, litellm_params, **_
        ):
            if litellm_params["metadata"]["evalhouse"]["attempt"] == 1:
                raise CustomLLMError(status_code=500, message="flaky")
            model_response.choices[0].message.content = "ok"
            return model_response

    class FastClock(Flaky):
        backoff_scale = 0.0

    install_custom_provider(litellm, "flaky", Flaky())
    install_custom_provider(litellm, "flaky-fast", FastClock())


def test_a_custom_provider_on_its_own_clock_scales_the_retry_backoff() -> None:
    """Back-off is the provider's business (the simulator's time_scale), read through the
    handler's `backoff_scale`: never a branch on the model's name."""
    config = Config.model_validate(
        {
            "custom_providers": [f"{__name__}:register_flaky"],
            "models": {"real": {"model": "flaky/m"}, "fast": {"model": "flaky-fast/m"}},
        }
    )
    client = LLMClient(config)
    metadata = {"evalhouse": {"item_id": "x"}}
    real, fast = (
        client.complete(name, [{"role": "user", "content": "x"}], metadata=metadata)
        for name in ("real", "fast")
    )
    client.close()
    assert (real.status, real.attempts, fast.status, fast.attempts) == ("ok", 2, "ok", 2)
    assert fast.timings["backoff_ms"] == 0.0
    assert 0.0 < real.timings["backoff_ms"] <= 500.0


# --- the simulated provider ---------------------------------------------------------------

SIM = {
    "models": {"tutor": {"model": "evalhouse-sim/tutor", "max_attempts": 6}},
    "simulator": {
        "seed": 3,
        "error_rate": 0,
        "rate_limit_rate": 0,
        "malformed_rate": 0,
        "models": {"tutor": {"accuracy": 0.8}},
        "drift": [{"stage": "loops", "start": "2024-06-01", "pass_shift": 0.5}],
    },
}


def _sim_meta(i: int, **extra) -> dict:
    return {
        "evalhouse": {
            "role": "grader",
            "item_id": f"item-{i}",
            "stage": "loops",
            "expected_verdict": "fail",
            "verdicts": ["pass", "revise", "fail"],
            "passing_verdicts": ["pass"],
            "issue_taxonomy": ["off_by_one", "style"],
            "expected_issue_tags": ["off_by_one"],
            **extra,
        }
    }


def _sim_grades(config: Config, n: int, **extra) -> list[dict]:
    client = LLMClient(config)

    async def main():
        try:
            return await asyncio.gather(
                *(
                    client.acomplete(
                        "tutor",
                        [{"role": "user", "content": "x"}],
                        metadata=_sim_meta(i, **extra),
                        response_format=JSON_FORMAT,
                    )
                    for i in range(n)
                )
            )
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert all(r.status == "ok" for r in results)
    return [json.loads(r.text) for r in results]


def test_simulated_grader_is_deterministic_accurate_and_stays_in_vocabulary() -> None:
    config = Config.model_validate(SIM)
    first = _sim_grades(config, 300, as_of="2024-05-01")
    again = _sim_grades(Config.model_validate(SIM), 300, as_of="2024-05-01")
    assert first == again
    accuracy = sum(g["verdict"] == "fail" for g in first) / len(first)
    assert 0.7 < accuracy < 0.9
    assert {g["verdict"] for g in first} <= {"pass", "revise", "fail"}
    assert all(set(g["issue_tags"]) <= {"off_by_one", "style"} for g in first)
    assert all(
        0 <= g["score"] <= 1 and set(g["feedback"]) == {"strengths", "problems", "suggestion"}
        for g in first
    )


def test_simulated_drift_moves_a_stage_pass_rate_from_its_start_date() -> None:
    config = Config.model_validate(SIM)
    before = _sim_grades(config, 300, as_of=date(2024, 5, 31).isoformat())
    after = _sim_grades(config, 300, as_of=date(2024, 6, 1).isoformat())
    rate = [sum(g["verdict"] == "pass" for g in grades) / 300 for grades in (before, after)]
    assert rate[1] - rate[0] > 0.3


def test_simulated_faults_are_real_litellm_errors_and_retries_recover() -> None:
    config = Config.model_validate(
        {
            **SIM,
            "simulator": {
                **SIM["simulator"],
                "rate_limit_rate": 0.2,
                "error_rate": 0.2,
                "timeout_rate": 0.1,
                "malformed_rate": 0.0,
            },
        }
    )
    client = LLMClient(config)

    async def main():
        try:
            return await asyncio.gather(
                *(
                    client.acomplete(
                        "tutor",
                        [{"role": "user", "content": "x"}],
                        metadata=_sim_meta(i),
                        response_format=JSON_FORMAT,
                    )
                    for i in range(200)
                )
            )
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert sum(r.attempts > 1 for r in results) > 50
    assert sum(r.status == "ok" for r in results) >= 190


def test_simulated_provider_works_through_plain_sync_litellm() -> None:
    """The contract the capture helper relies on: litellm.completion with metadata."""
    from evals.llm import configured_litellm

    litellm = configured_litellm(Config.model_validate(SIM))
    response = litellm.completion(
        model="evalhouse-sim/tutor",
        messages=[{"role": "user", "content": "x"}],
        response_format=JSON_FORMAT,
        metadata=_sim_meta(1),
    )
    # deterministic: seed, model, item and role fix the reply (here the expected verdict, fail)
    assert json.loads(response.choices[0].message.content)["verdict"] == "fail"
    usage = response.usage
    assert usage.prompt_tokens == len("x") // 4 + 4  # the simulator: chars / 4 + 4 per message
    simulator = Config.model_validate(SIM).simulator
    assert litellm.completion_cost(completion_response=response, model="evalhouse-sim/tutor") == (
        pytest.approx(
            usage.prompt_tokens * simulator.input_cost_per_token
            + usage.completion_tokens * simulator.output_cost_per_token
        )
    )
    answer = litellm.completion(
        model="evalhouse-sim/tutor",
        messages=[{"role": "user", "content": "2+2?"}],
        metadata={"evalhouse": {"role": "candidate", "item_id": "q", "expected_answer": "4"}},
    )
    assert answer.choices[0].message.content == "4"


def test_the_simulator_warms_up_only_for_a_config_with_a_simulated_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its warm-up call is on the way to a run's first request: a config that calls no
    simulated model does without it."""
    from evals import simulated
    from evals.llm import configured_litellm

    monkeypatch.setattr(simulated, "_warmed", threading.Event())
    configured_litellm(Config.model_validate({"models": {"m": {"model": "openai/m"}}}))
    assert not simulated._warmed.is_set()
    configured_litellm(Config.model_validate(SIM))
    assert simulated._warmed.is_set()


def test_simulated_stage_accuracy_is_relative_to_the_base() -> None:
    config = Config.model_validate(
        {
            **SIM,
            "simulator": {
                **SIM["simulator"],
                "drift": [],
                "models": {"tutor": {"accuracy": 0.85}},
                "stages": {"loops": {"accuracy": 0.45}},
            },
        }
    )
    grades = _sim_grades(config, 300)
    accuracy = sum(g["verdict"] == "fail" for g in grades) / len(grades)
    assert 0.35 < accuracy < 0.55


def test_a_key_in_a_variable_of_any_name_never_reaches_an_error_message(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrubber knows the value of every configured api_key_env, not only *_KEY names."""
    credential = "qz81Mx9CRED7734llm"  # no provider's shape: only its variable gives it away
    monkeypatch.setenv("MY_LLM_CREDENTIAL", credential)
    fake_openai.script('grade echo"', ["auth"])
    client = LLMClient(_config(fake_openai, api_key_env="MY_LLM_CREDENTIAL"))
    try:
        result = client.run_sync(_ask(client, "echo"))
    finally:
        client.close()
    assert fake_openai.requests[-1]["headers"]["authorization"] == f"Bearer {credential}"
    assert (result.status, result.attempts) == ("error", 1)
    assert "Incorrect API key provided: [REDACTED]" in result.error_message
    assert credential not in result.error_message


def test_a_model_whose_key_variable_is_unset_is_refused_and_nothing_is_sent(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_LLM_CREDENTIAL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-teams-key-0123456789abcdef")
    client = LLMClient(_config(fake_openai, api_key_env="MY_LLM_CREDENTIAL"))
    try:
        result = client.run_sync(_ask(client, "nokey"))
    finally:
        client.close()
    assert fake_openai.requests == []
    assert (result.status, result.attempts, result.error_class) == (
        "error",
        0,
        "MissingCredential",
    )
    assert "MY_LLM_CREDENTIAL" in result.error_message and "'m'" in result.error_message


def _models_asked(monkeypatch: pytest.MonkeyPatch, litellm, function: str) -> list[str]:
    """The `model=` of every call to LiteLLM's `function` from now on, in order."""
    models = []
    real = getattr(litellm, function)

    def counted(*args, **kwargs):
        models.append(kwargs.get("model"))
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm, function, counted)
    return models


def test_an_unknown_price_is_looked_up_once_per_model_and_recorded_as_unknown(
    fake_openai: FakeOpenAI, keyed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import litellm

    lookups = _models_asked(monkeypatch, litellm, "completion_cost")
    client = LLMClient(  # a model no other test priced: LiteLLM's price map is process-global
        _config(
            fake_openai,
            model="openai/never-priced-model",
            input_cost_per_token=None,
            output_cost_per_token=None,
        )
    )

    async def three_calls():
        return [await _ask(client, f"unpriced-{n}") for n in range(3)]

    try:
        results = client.run_sync(three_calls())
    finally:
        client.close()
    assert [(r.status, r.cost_usd) for r in results] == [("ok", None)] * 3
    assert lookups == ["openai/never-priced-model"]


def test_litellm_prices_a_reply_only_when_the_config_gives_no_prices(
    fake_openai: FakeOpenAI, keyed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config.model_validate(
        {
            "models": {
                "priced": _config(fake_openai).model("m"),
                "listed": _config(
                    fake_openai,
                    model="openai/gpt-4o-mini",
                    input_cost_per_token=None,
                    output_cost_per_token=None,
                ).model("m"),
            }
        }
    )
    litellm = configured_litellm(config)  # with its warm-up call: not under test
    pricings = _models_asked(monkeypatch, litellm, "response_cost_calculator")
    client = LLMClient(config)

    async def one_each():
        return [await _ask(client, "priced", "priced"), await _ask(client, "listed", "listed")]

    try:
        priced, listed = client.run_sync(one_each())
    finally:
        client.close()
    listed_prices = litellm.model_cost["gpt-4o-mini"]
    assert priced.cost_usd == pytest.approx(
        priced.input_tokens * 1e-6 + priced.output_tokens * 2e-6
    )
    assert listed.cost_usd == pytest.approx(
        listed.input_tokens * listed_prices["input_cost_per_token"]
        + listed.output_tokens * listed_prices["output_cost_per_token"]
    )
    assert pricings == ["openai/gpt-4o-mini"]  # the priced model's reply is priced once, by us


def test_sparse_collections_raise_the_young_threshold_until_the_last_one_closes() -> None:
    before = gc.get_threshold()
    with sparse_collections():
        with sparse_collections():  # a second pool in the same process (a thread's run)
            assert gc.get_threshold() == (SPARSE_GEN0_THRESHOLD, *before[1:])
        assert gc.get_threshold() == (SPARSE_GEN0_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
