"""The offline simulated provider: `evalhouse-sim/<name>` models inside LiteLLM.

No provider is reachable from a fresh sandbox, yet the demo, the drift story and most tests need
a model that behaves like one: slow-ish, occasionally failing, mostly right, sometimes biased.
`register(config)` installs a LiteLLM `CustomLLM` under the provider name `evalhouse-sim`, so
`litellm.completion(model="evalhouse-sim/tutor-small", ...)` (sync or async) goes through
LiteLLM's normal path — callbacks, exception mapping, usage and cost — and only the HTTP round
trip is simulated. THE DEMO'S MODELS ARE SIMULATED: their verdicts come from the golden labels
passed in the call's metadata, degraded by the configured accuracy, not from reading the prompt.

This module is the simulator's only seam: nothing else in evalhouse names its prefix. The engine
calls a simulated model like any LiteLLM model; what the simulator needs reaches it through
LiteLLM's own interfaces — the call's metadata (which every graded call carries), its prices
(`litellm.register_model`), and `backoff_scale` on the handler (retries wait in its time).
`register` is the config's default `custom_providers` entry.

Metadata contract (`metadata={"evalhouse": {...}}` on the LiteLLM call, as
`evals.judging.call_metadata` builds it; every key optional):
    role              "grader" | "judge" | "candidate" (default: grader when JSON is asked for,
                      else candidate)
    item_id, trial    identify the item; with the seed and model they fix the reply
    stage             selects simulator.stages[stage] accuracy / pass_bias and drift
    expected_verdict  the truth a grader should find (grader role)
    verdicts, passing_verdicts, issue_taxonomy, expected_issue_tags
                      the suite's vocabulary; replies never leave it
    expected_answer   the reference answer (candidate answers it; judge compares with it)
    candidate_answer  the answer being judged (judge role)
    as_of             ISO date the call is "made" on, for drift scenarios (default: today)
    attempt           1-based attempt number; faults are drawn per attempt so retries recover
    position          a pairwise judgment (role judge): "ab" shows response_a first, "ba"
                      response_b first; with response_a, response_b, contestant_a,
                      contestant_b and expected_verdict (a | b | tie, the item's own labelling)

Determinism: the verdict, tags, feedback and answer are a pure function of (seed, model,
item_id, role, trial, stage, as_of); latency and faults are a function of the same plus the
attempt (or a per-process call counter when no attempt is given).

Behaviour from `config.simulator`:
    accuracy          P(the reply matches the truth) = models[name].accuracy (default 0.85)
                      + (stages[stage].accuracy - 0.85): stage accuracy is relative to 0.85
    pass_bias         models[name].pass_bias + stages[stage].pass_bias + active drift pass_shift:
                      a positive bias turns that share of failing verdicts into passing ones,
                      a negative one the reverse
    latency           lognormal(median latency_ms_median, sigma latency_sigma) x time_scale
                      (time_scale 0: no sleeping at all)
    faults per attempt: rate_limit_rate (429 with Retry-After), error_rate (500), timeout_rate
                      (hangs until the call's timeout, then raises a Timeout; with
                      time_scale 0 at once),
                      malformed_rate (JSON replies cut off mid-object)
    prices            input/output_cost_per_token, registered with LiteLLM for every sim model
    pairwise judges   the true preference of a pair is the item's expected_verdict, else drawn
                      from simulator.pairwise.ratings (Bradley-Terry on the Elo scale:
                      P(a beats b) = 1 / (1 + 10^((r_b - r_a) / 400)), a tie with tie_rate),
                      else the answer containing the reference wins, else a tie; drawn once
                      per item and pair, the same in both orders and every trial. The judge
                      names the first slot with P = models[name].position_bias, else the true
                      slot with P = accuracy, else one of the two other verdicts. A judge with
                      `prefer: longer` names the longer response (equal length: tie), always.
    back-off          `backoff_scale` = time_scale: retry back-offs shrink with the latency
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError

from evals.litellm_compat import install_custom_provider, register_prices
from evals.llm import METADATA_KEY

if TYPE_CHECKING:
    from evals.config import Config, SimulatorConfig

PROVIDER = "evalhouse-sim"
DEFAULT_VERDICTS = ("pass", "revise", "fail")
BASE_ACCURACY = 0.85
_HANG_WITHOUT_TIMEOUT_S = 600.0

_STRENGTHS = (
    "Clear structure that is easy to follow.",
    "Handles the main case correctly.",
    "Good choice of names.",
    "Shows understanding of the core idea.",
    "Concise and to the point.",
)
_SUGGESTIONS = (
    "Walk through one edge case by hand before submitting.",
    "Re-read the task statement and check each requirement.",
    "Add a small test for the boundary values.",
    "Explain your reasoning in one or two sentences.",
)


class SimulatedProviderError(CustomLLMError):
    """A simulated provider failure; `headers` reach LiteLLM's exception mapping (Retry-After)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        import httpx

        super().__init__(status_code=status_code, message=message)
        self.headers = httpx.Headers(headers or {})


@dataclass(frozen=True)
class _Reply:
    """What one simulated call does: wait, then fail or answer."""

    latency_s: float
    fault: str | None  # rate_limit | server_error | hang | None
    text: str
    response_model: str


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _normalise(text: str | None) -> str:
    return " ".join(str(text or "").lower().split()).strip(" .")


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return date.today()


class SimulatedProvider(CustomLLM):
    """The LiteLLM handler behind `evalhouse-sim/<name>`."""

    def __init__(self, simulator: SimulatorConfig) -> None:
        super().__init__()
        self.sim = simulator
        self._calls: dict[tuple[Any, ...], int] = {}
        self._lock = threading.Lock()

    @property
    def backoff_scale(self) -> float:
        """Seconds of this provider's time per real second: callers scale retry back-off by it."""
        return self.sim.time_scale

    # --- LiteLLM entry points -------------------------------------------------------------

    def completion(
        self,
        model,
        messages,
        model_response,
        optional_params,
        litellm_params,
        timeout=None,
        **_: Any,
    ):
        reply = self._reply(model, messages, optional_params, litellm_params)
        if reply.latency_s > 0:
            time.sleep(reply.latency_s)
        if reply.fault == "hang":
            time.sleep(self._hang_s(timeout))
        return self._finish(reply, model, messages, model_response)

    async def acompletion(
        self,
        model,
        messages,
        model_response,
        optional_params,
        litellm_params,
        timeout=None,
        **_: Any,
    ):
        reply = self._reply(model, messages, optional_params, litellm_params)
        if reply.latency_s > 0:
            await asyncio.sleep(reply.latency_s)
        if reply.fault == "hang":
            await asyncio.sleep(self._hang_s(timeout))
        return self._finish(reply, model, messages, model_response)

    # --- the simulation -------------------------------------------------------------------

    def _hang_s(self, timeout: Any) -> float:
        """A hung provider answers nothing until the caller's HTTP timeout gives up on it."""
        if self.sim.time_scale == 0:
            return 0.0
        seconds = getattr(timeout, "read", timeout)
        return float(seconds) if seconds else _HANG_WITHOUT_TIMEOUT_S

    def _finish(self, reply: _Reply, model: str, messages: list, model_response):
        import litellm

        if reply.fault == "rate_limit":
            retry_after = "1" if self.sim.time_scale > 0 else "0"
            raise SimulatedProviderError(
                429, f"simulated rate limit for {model}", {"retry-after": retry_after}
            )
        if reply.fault == "server_error":
            raise SimulatedProviderError(500, f"simulated internal error in {model}")
        if reply.fault == "hang":
            raise litellm.Timeout(
                message=f"simulated hang of {model}", model=model, llm_provider=PROVIDER
            )
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        model_response.choices[0].message.content = reply.text
        model_response.model = reply.response_model
        model_response.usage = litellm.Usage(
            prompt_tokens=prompt_chars // 4 + 4 * len(messages),
            completion_tokens=len(reply.text) // 4 + 1,
            total_tokens=prompt_chars // 4 + 4 * len(messages) + len(reply.text) // 4 + 1,
        )
        return model_response

    def _reply(
        self, model: str, messages: list, optional_params: dict, litellm_params: dict
    ) -> _Reply:
        meta = ((litellm_params or {}).get("metadata") or {}).get(METADATA_KEY) or {}
        wants_json = bool((optional_params or {}).get("response_format"))
        role = meta.get("role") or ("grader" if wants_json else "candidate")
        item_id = (
            meta.get("item_id")
            or hashlib.sha256(repr([m.get("content") for m in messages]).encode()).hexdigest()[:16]
        )
        identity = (self.sim.seed, model, item_id, role, meta.get("trial", 0))
        attempt = meta.get("attempt")
        if attempt is None:
            with self._lock:
                attempt = self._calls[identity] = self._calls.get(identity, 0) + 1
        chance = _rng(*identity, "attempt", attempt)
        latency_s = (
            self.sim.latency_ms_median
            / 1000
            * math.exp(self.sim.latency_sigma * chance.gauss(0, 1))
            * self.sim.time_scale
        )
        fault = self._fault(chance.random())
        stage = meta.get("stage")
        content = _rng(*identity, stage, meta.get("as_of"))
        if role == "candidate":
            text = self._answer(content, model, stage, meta)
        elif role == "judge" and "position" in meta:
            text = self._prefer(model, stage, meta)
            if fault is None and chance.random() < self.sim.malformed_rate:
                text = text[: max(1, len(text) // 2)]
        else:
            text = self._grade(content, model, stage, meta, role)
            if fault is None and chance.random() < self.sim.malformed_rate:
                text = text[: max(1, len(text) // 2)]  # cut off mid-object: unparseable JSON
        return _Reply(latency_s, fault, text, f"{model}-sim-v1")

    def _fault(self, draw: float) -> str | None:
        for fault, rate in (
            ("rate_limit", self.sim.rate_limit_rate),
            ("server_error", self.sim.error_rate),
            ("hang", self.sim.timeout_rate),
        ):
            if draw < rate:
                return fault
            draw -= rate
        return None

    def _accuracy(self, model: str, stage: str | None) -> float:
        model_cfg = self.sim.models.get(model)
        accuracy = model_cfg.accuracy if model_cfg else BASE_ACCURACY
        if stage in self.sim.stages:
            accuracy += self.sim.stages[stage].accuracy - BASE_ACCURACY
        return min(1.0, max(0.0, accuracy))

    def _pass_bias(self, model: str, stage: str | None, as_of: Any) -> float:
        bias = self.sim.models[model].pass_bias if model in self.sim.models else 0.0
        if stage in self.sim.stages:
            bias += self.sim.stages[stage].pass_bias
        if stage is not None and self.sim.drift:
            day = _as_date(as_of)
            bias += sum(d.pass_shift for d in self.sim.drift if d.stage == stage and day >= d.start)
        return max(-1.0, min(1.0, bias))

    def _answer(self, rng: random.Random, model: str, stage: str | None, meta: dict) -> str:
        expected = meta.get("expected_answer")
        if expected is None:
            return "Here is a careful answer to the question, step by step."
        if rng.random() < self._accuracy(model, stage):
            return str(expected)
        try:
            number = float(expected)
        except ValueError:
            return rng.choice(
                (
                    "I am not certain, but I believe the answer is something else entirely.",
                    "I do not know enough to answer that reliably.",
                    "That cannot be determined from the question.",
                )
            )
        return f"{number + rng.choice((-1, 1)) * max(1.0, abs(number) * 0.1):g}"

    def _true_preference(self, meta: dict) -> str:
        """The pair's true preference in the item's labelling (a, b or tie)."""
        if meta.get("expected_verdict") in ("a", "b", "tie"):
            return meta["expected_verdict"]
        ratings = self.sim.pairwise.ratings
        a, b = meta.get("contestant_a"), meta.get("contestant_b")
        if a in ratings and b in ratings:
            draw = _rng(self.sim.seed, "pairwise-truth", meta.get("item_id"), a, b).random()
            if draw < self.sim.pairwise.tie_rate:
                return "tie"
            p_a = 1 / (1 + 10 ** ((ratings[b] - ratings[a]) / 400))
            return (
                "a"
                if (draw - self.sim.pairwise.tie_rate) / (1 - self.sim.pairwise.tie_rate) < p_a
                else "b"
            )
        reference = _normalise(meta.get("expected_answer"))
        if reference:
            right = {s: reference in _normalise(meta.get(f"response_{s}")) for s in ("a", "b")}
            if right["a"] != right["b"]:
                return "a" if right["a"] else "b"
        return "tie"

    def _prefer(self, model: str, stage: str | None, meta: dict) -> str:
        """A pairwise judge's reply naming a slot: `first`, `second` or `tie`."""
        import json

        first, second = ("a", "b") if meta["position"] == "ab" else ("b", "a")
        cfg = self.sim.models.get(model)
        if cfg is not None and cfg.prefer == "longer":
            longer = len(str(meta.get(f"response_{first}") or "")) - len(
                str(meta.get(f"response_{second}") or "")
            )
            slot = "first" if longer > 0 else ("second" if longer < 0 else "tie")
            return json.dumps({"verdict": slot, "reason": "The longer response is better."})
        truth = self._true_preference(meta)
        true_slot = {first: "first", second: "second", "tie": "tie"}[truth]
        rng = _rng(
            self.sim.seed, model, meta.get("item_id"), meta.get("trial", 0), meta["position"]
        )
        if rng.random() < (cfg.position_bias if cfg else 0.0):
            slot = "first"
        elif rng.random() < self._accuracy(model, stage):
            slot = true_slot
        else:
            slot = rng.choice([s for s in ("first", "second", "tie") if s != true_slot])
        reason = "Both are equally good." if slot == "tie" else f"The {slot} response is better."
        return json.dumps({"verdict": slot, "reason": reason})

    def _truth(
        self, rng: random.Random, role: str, meta: dict, verdicts: list[str], passing: list[str]
    ) -> str:
        if role == "judge":
            answer, expected = meta.get("candidate_answer"), meta.get("expected_answer")
            if answer is not None and expected is not None:
                if _normalise(expected) and _normalise(expected) in _normalise(answer):
                    return passing[0]
                failing = [v for v in verdicts if v not in passing]
                return "incorrect" if "incorrect" in failing else (failing or verdicts)[-1]
        truth = meta.get("expected_verdict")
        return truth if truth in verdicts else rng.choice(verdicts)

    def _grade(
        self, rng: random.Random, model: str, stage: str | None, meta: dict, role: str
    ) -> str:
        import json

        verdicts = list(meta.get("verdicts") or DEFAULT_VERDICTS)
        passing = [v for v in meta.get("passing_verdicts") or verdicts[:1] if v in verdicts]
        passing = passing or verdicts[:1]
        failing = [v for v in verdicts if v not in passing] or verdicts[-1:]
        truth = self._truth(rng, role, meta, verdicts, passing)
        others = [v for v in verdicts if v != truth]
        verdict = (
            truth
            if rng.random() < self._accuracy(model, stage) or not others
            else rng.choice(others)
        )
        bias, flip = self._pass_bias(model, stage, meta.get("as_of")), rng.random()
        if bias > 0 and verdict not in passing and flip < bias:
            verdict = passing[0]
        elif bias < 0 and verdict in passing and flip < -bias:
            verdict = failing[0]
        taxonomy = list(meta.get("issue_taxonomy") or [])
        expected_tags = [t for t in meta.get("expected_issue_tags") or [] if t in taxonomy]
        if verdict in passing:
            tags = [t for t in expected_tags if truth not in passing and rng.random() < 0.3]
        elif verdict == truth:
            tags = [t for t in expected_tags if rng.random() < 0.9]
            if taxonomy and rng.random() < 0.05:
                tags.append(rng.choice(taxonomy))
        else:
            tags = expected_tags or ([rng.choice(taxonomy)] if taxonomy else [])
        tags = list(dict.fromkeys(tags))
        rank = verdicts.index(verdict) / max(1, len(verdicts) - 1)
        score = round(min(1.0, max(0.0, 1 - rank * 0.85 - rng.random() * 0.15)), 2)
        reply = {
            "verdict": verdict,
            "score": score,
            "feedback": {
                "strengths": rng.sample(_STRENGTHS, k=1 + (verdict in passing)),
                "problems": [f"Check the {tag.replace('_', ' ')}." for tag in tags],
                "suggestion": rng.choice(_SUGGESTIONS),
            },
            "issue_tags": tags,
        }
        return json.dumps(reply)


def simulates(model: str) -> bool:
    """Whether a LiteLLM model string is one of this provider's."""
    return model.startswith(f"{PROVIDER}/")


def sim_model_names(config: Config) -> list[str]:
    """LiteLLM model strings of the configured simulated models."""
    return [m.model for m in config.models.values() if simulates(m.model)]


_warmed = threading.Event()


def _warm_up(litellm) -> None:
    """One call through the handler, once per process: LiteLLM imports its custom-provider path
    on first use (~0.5 s), which would otherwise land on the first simulated call's latency."""
    try:
        litellm.completion(
            model=f"{PROVIDER}/warm-up",
            messages=[{"role": "user", "content": "hi"}],
            metadata={METADATA_KEY: {"role": "candidate", "item_id": "warm-up", "attempt": 0}},
        )
    except Exception:  # the fault rates apply to this call too; it warmed up anyway
        pass
    _warmed.set()


def register(config: Config) -> SimulatedProvider:
    """Install (or re-install with new settings) the provider and the prices of the configured
    simulated models in LiteLLM (explicit model prices, registered after, win); returns the
    handler."""
    import litellm

    handler = SimulatedProvider(config.simulator)
    install_custom_provider(litellm, PROVIDER, handler)
    prices = {
        "input_cost_per_token": config.simulator.input_cost_per_token,
        "output_cost_per_token": config.simulator.output_cost_per_token,
        "litellm_provider": PROVIDER,
        "mode": "chat",
    }
    names = sim_model_names(config)
    register_prices(litellm, {name: dict(prices) for name in names})
    if names and not _warmed.is_set():  # a config with no simulated model never calls it
        _warm_up(litellm)
    return handler
