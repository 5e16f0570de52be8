"""From a model's reply to a structured verdict — or an honest `parse_error`.

Three ways to score:
- the rubric grader: the model under test grades a submission; its JSON reply becomes verdict,
  score, feedback {strengths, problems, suggestion} and issue tags from the suite's taxonomy;
- the answer judge: an LLM compares a candidate's answer with the reference answer (same JSON);
- deterministic scorers (exact, contains, regex, numeric tolerance, valid JSON): no LLM at all.

Models wrap JSON in code fences, prepend prose, or cut it off. `parse_json_reply` finds the first
JSON object anywhere in the text; a reply with no usable object, or with a verdict outside the
suite's vocabulary, is `parse_error` with the raw text kept by the caller — never a silent 0.
Messages are built here too (from evals/prompts), so the runner, replay and capture all render
a grader or judge prompt the same way; so is a graded call's metadata (`call_metadata`).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evals.llm import METADATA_KEY
from evals.prompts import ANSWER_CANDIDATE, ANSWER_JUDGE, RUBRIC_GRADER, PromptTemplate, load_prompt

if TYPE_CHECKING:
    from evals.golden import GoldenItem, Suite

JSON_RESPONSE_FORMAT = {"type": "json_object"}
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Rendered:
    """A prompt rendered for one call: what was sent and what it was rendered from."""

    prompt_name: str
    prompt_version: str
    messages: list[dict[str, str]]
    inputs: dict[str, Any]


@dataclass
class Grade:
    """A parsed verdict. status is ok or parse_error; `problem` says what failed to parse."""

    status: str
    verdict: str | None = None
    passed: bool | None = None
    score: float | None = None
    feedback: dict[str, Any] | None = None
    issue_tags: list[str] = field(default_factory=list)
    unknown_tags: list[str] = field(default_factory=list)
    problem: str | None = None
    parse_ms: float = 0.0


# --- rendering ------------------------------------------------------------------------------


def _vocabulary(suite: Suite) -> dict[str, Any]:
    return {
        "verdicts": list(suite.verdicts),
        "passing_verdicts": list(suite.passing_verdicts),
        "issue_tags": list(suite.issue_tags),
    }


def item_truth(item: GoldenItem) -> dict[str, Any]:
    """What the golden item says the right outcome is."""
    return {
        "expected_verdict": item.expected_verdict,
        "expected_answer": item.expected_answer,
        "expected_issue_tags": list(item.expected_issue_tags),
    }


def call_metadata(suite: Suite | None, **tags: Any) -> dict[str, Any]:
    """The LiteLLM `metadata` of a graded call: what it is about (role, item_id, trial, stage,
    as_of, ...), the item's truth (`item_truth`) and the suite's vocabulary, unset values left out.

    Every graded call carries it, whatever the model: LiteLLM hands metadata to callbacks and
    custom providers (the offline simulator grades from it) and never sends it to a provider's
    API, so a real model does not see the expected verdict."""
    if suite is not None:
        tags = {
            "verdicts": list(suite.verdicts),
            "passing_verdicts": list(suite.passing_verdicts),
            "issue_taxonomy": list(suite.issue_tags),
            **tags,
        }
    return {METADATA_KEY: {key: value for key, value in tags.items() if value is not None}}


def render_grader(suite: Suite, item: GoldenItem, prompt: PromptTemplate | None = None) -> Rendered:
    """Messages asking a model to grade the item's submission against its rubric."""
    prompt = prompt or load_prompt(RUBRIC_GRADER)
    inputs = {
        "rubric": item.rubric,
        "submission": item.submission,
        "prior_context": item.prior_context,
        "stage": item.stage,
        **_vocabulary(suite),
    }
    return Rendered(prompt.name, prompt.version, prompt.render(**inputs), inputs)


def render_candidate(item: GoldenItem, prompt: PromptTemplate | None = None) -> Rendered:
    """Messages asking the model under test to answer the item's question."""
    prompt = prompt or load_prompt(ANSWER_CANDIDATE)
    inputs = {
        "question": item.question,
        "prior_context": item.prior_context,
        "stage": item.stage,
        "category": item.category,
    }
    return Rendered(prompt.name, prompt.version, prompt.render(**inputs), inputs)


def render_judge(
    suite: Suite, item: GoldenItem, answer: str, prompt: PromptTemplate | None = None
) -> Rendered:
    """Messages asking a judge to score `answer` against the item's reference answer."""
    prompt = prompt or load_prompt(ANSWER_JUDGE)
    inputs = {
        "question": item.question,
        "expected_answer": item.expected_answer,
        "answer": answer,
        "rubric": item.rubric,
        **_vocabulary(suite),
    }
    return Rendered(prompt.name, prompt.version, prompt.render(**inputs), inputs)


# --- parsing --------------------------------------------------------------------------------


def parse_json_reply(text: str | None) -> dict[str, Any] | None:
    """The first JSON object in a reply (fenced, after prose, or bare), or None."""
    if not text:
        return None
    candidates = [match.group(1) for match in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = _DECODER.raw_decode(candidate, start)
            except ValueError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = candidate.find("{", start + 1)
    return None


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(score):
        return None
    if 1 < score <= 100:  # some models answer in percent
        score /= 100
    return min(1.0, max(0.0, score))


def _feedback(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"strengths": [], "problems": _strings(value), "suggestion": None}
    suggestion = value.get("suggestion")
    return {
        "strengths": _strings(value.get("strengths")),
        "problems": _strings(value.get("problems")),
        "suggestion": None if suggestion in (None, "") else str(suggestion),
    }


def match_verdict(raw: Any, verdicts: tuple[str, ...] | list[str]) -> str | None:
    """The vocabulary verdict `raw` names (case and surrounding space ignored), or None."""
    if raw is None or isinstance(raw, dict | list):
        return None
    text = str(raw).strip()
    if text in verdicts:
        return text
    lowered = {v.lower(): v for v in verdicts}
    return lowered.get(text.lower())


def parse_grade(text: str | None, suite: Suite) -> Grade:
    """Parse a grader's or judge's reply against the suite's vocabulary and taxonomy."""
    started = time.perf_counter()
    grade = _parse_grade(text, suite)
    grade.parse_ms = round((time.perf_counter() - started) * 1000, 3)
    return grade


def _parse_grade(text: str | None, suite: Suite) -> Grade:
    data = parse_json_reply(text)
    if data is None:
        return Grade(status="parse_error", problem="no JSON object in the reply")
    if "verdict" not in data:
        return Grade(status="parse_error", problem="the JSON has no 'verdict'")
    verdict = match_verdict(data["verdict"], suite.verdicts)
    if verdict is None:
        return Grade(
            status="parse_error",
            problem=f"verdict {str(data['verdict'])[:80]!r} is not one of "
            f"{', '.join(suite.verdicts)}",
        )
    raw_tags = _strings(data.get("issue_tags"))
    taxonomy = {tag.lower(): tag for tag in suite.issue_tags}
    tags = list(
        dict.fromkeys(
            taxonomy[t.strip().lower()] for t in raw_tags if t.strip().lower() in taxonomy
        )
    )
    unknown = [t for t in raw_tags if t.strip().lower() not in taxonomy]
    return Grade(
        status="ok",
        verdict=verdict,
        passed=suite.passes(verdict),
        score=_score(data.get("score")),
        feedback=_feedback(data.get("feedback")),
        issue_tags=tags,
        unknown_tags=unknown,
    )


# --- deterministic scorers ------------------------------------------------------------------


def _norm(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split())
    return text if case_sensitive else text.lower()


_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _last_number(text: str) -> float | None:
    """The answer's final number ("... so the total is 1,234.5" -> 1234.5)."""
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    try:
        return float(matches[-1].replace(",", ""))
    except ValueError:
        return None


def deterministic_pass(scorer: dict[str, Any], answer: str, expected: str | None) -> bool:
    """Whether `answer` passes the scorer (see evals.golden.SCORER_OPTIONS for the options)."""
    kind = scorer["type"]
    if kind == "exact":
        sensitive = bool(scorer.get("case_sensitive", False))
        return _norm(answer, sensitive) == _norm(expected or "", sensitive)
    if kind == "contains":
        sensitive = bool(scorer.get("case_sensitive", False))
        return _norm(expected or "", sensitive) in _norm(answer, sensitive)
    if kind == "regex":
        flags = re.IGNORECASE if scorer.get("ignore_case") else 0
        return (
            re.search(scorer.get("pattern") or re.escape(expected or ""), answer, flags) is not None
        )
    if kind == "numeric":
        got, want = _last_number(answer), float(expected or "nan")
        if got is None:
            return False
        tolerance = float(scorer.get("tolerance", 0.0))
        if scorer.get("relative"):
            tolerance *= abs(want)
        return abs(got - want) <= tolerance + 1e-12
    if kind == "json":
        data = parse_json_reply(answer) if "{" in answer else None
        if data is None:
            try:
                data = json.loads(answer)
            except ValueError:
                return False
        required = scorer.get("required_keys") or []
        return not required or (isinstance(data, dict) and all(k in data for k in required))
    raise ValueError(f"unknown scorer type {kind!r}")


def score_deterministic(suite: Suite, item: GoldenItem, answer: str) -> Grade:
    """Grade an answer with the item's scorer: a passing verdict or the suite's failing one."""
    started = time.perf_counter()
    passed = deterministic_pass(item.scorer or {}, answer, item.expected_answer)
    failing = [v for v in suite.verdicts if v not in suite.passing_verdicts]
    verdict = (
        suite.passing_verdicts[0]
        if passed
        else ("incorrect" if "incorrect" in failing else (failing or list(suite.verdicts))[-1])
    )
    return Grade(
        status="ok",
        verdict=verdict,
        passed=passed,
        score=1.0 if passed else 0.0,
        feedback=None,
        parse_ms=round((time.perf_counter() - started) * 1000, 3),
    )
