"""The shared scrubber: every credential shape providers leak, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evals.redact import REDACTED, PiiRedactor, compile_patterns, scrub, scrub_value

LEAKS = [
    ("Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwx1234.", "sk-proj-abcdefghij"),
    ("anthropic: invalid x-api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03"),
    (
        "GET https://generativelanguage.googleapis.com/v1/models?key=AIzaSyA1234567890abcdefghij"
        "klmnopqrstu&alt=sse",
        "AIzaSyA1234567890",
    ),
    ("POST https://example.test/v1?api_key=plainsecretvalue&x=1", "plainsecretvalue"),
    ("retry with token=tok_abcdef123456 please", "tok_abcdef123456"),
    ("{'Authorization': 'Bearer abcdef1234567890'}", "abcdef1234567890"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ('{"api_key": "quoted-secret-value"}', "quoted-secret-value"),
    ("hf token hf_abcdefghijklmnopqrstuvwxyz12 failed", "hf_abcdefghijklmnop"),
    ("aws AKIAABCDEFGHIJKLMNOP denied", "AKIAABCDEFGHIJKLMNOP"),
    ("postgresql://app:hunter2hunter2@db.example/prod", "hunter2hunter2"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnopqrs", "eyJhbGciOiJI"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS)
def test_every_known_credential_shape_is_redacted(text: str, secret: str) -> None:
    cleaned = scrub(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_the_value_of_any_secret_named_env_var_is_redacted_whatever_its_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_LLM_KEY", "zz9-plural-z-alpha")
    monkeypatch.setenv("SOME_SERVICE_PASSWORD", "correct horse battery")
    text = "auth failed for zz9-plural-z-alpha; tried correct horse battery"
    assert scrub(text) == f"auth failed for {REDACTED}; tried {REDACTED}"


def test_short_or_unrelated_env_values_do_not_shred_ordinary_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEATURE_TOKEN", "on")
    monkeypatch.setenv("HOME_DIR", "the loop")
    text = "the loop runs on 42 tokens; monkey=banana keyboard"
    assert scrub(text) == text


def test_scrubbing_is_idempotent_and_keeps_none() -> None:
    once = scrub("key=abcdef123 and Bearer abcdefghijkl")
    assert scrub(once) == once
    assert scrub(None) is None
    assert scrub("") == ""


def test_structures_lose_values_under_secret_named_keys_and_scrub_the_rest() -> None:
    value = {
        "api_key": "x",
        "headers": {"Authorization": "Bearer y"},
        "max_tokens": 5,
        "note": ["see ?key=abcdefgh"],
        "ok": None,
    }
    assert scrub_value(value) == {
        "api_key": REDACTED,
        "headers": {"Authorization": REDACTED},
        "max_tokens": 5,
        "note": [f"see ?key={REDACTED}"],
        "ok": None,
    }


def test_extra_patterns_apply_on_top() -> None:
    patterns = compile_patterns([r"learner-\d+"])
    assert scrub("graded learner-1234", patterns) == f"graded {REDACTED}"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to alice.b+x@uni.example.ac.uk", "email", "alice.b+x@uni.example.ac.uk"),
        ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("call (555) 123-4567", "phone", "(555) 123-4567"),
        ("call 555.123.4567", "phone", "555.123.4567"),
        ("call 020 7946 0958", "phone", "020 7946 0958"),
        ("call +1-202-555-0143", "phone", "+1-202-555-0143"),
    ],
)
def test_personal_data_of_each_shape_is_replaced_by_its_kind(
    text: str, kind: str, value: str
) -> None:
    token = "[EMAIL]" if kind == "email" else "[PHONE]"
    assert PiiRedactor()(text) == (text.replace(value, token), {kind: frozenset({value})})


@pytest.mark.parametrize(
    "text",
    [
        "due 2026-11-30 at 12:00",
        "pi is 3.14159265358",
        "print(100 200 300)",
        "10 20 30 40 50",
        "1 2 3 4 5 6 7 8 9 10",
        "epoch 1700000000",
        "ip 192.168.100.200",
        "user@localhost",
    ],
)
def test_numbers_and_dates_in_learners_code_are_not_taken_for_personal_data(text: str) -> None:
    assert PiiRedactor()(text) == (text, {})


def test_the_redactor_counts_distinct_values_and_applies_custom_patterns() -> None:
    redactor = PiiRedactor(["email"], patterns=[r"S\d{7}"])
    text = "S1234567 (a@b.org) copied a@b.org and c@d.org; call 555-123-4567"
    assert redactor(text) == (
        "[REDACTED] ([EMAIL]) copied [EMAIL] and [EMAIL]; call 555-123-4567",
        {"email": frozenset({"a@b.org", "c@d.org"}), "custom": frozenset({"S1234567"})},
    )


_PII_LIKE = st.one_of(
    st.text(),
    st.from_regex(r"\+?\(?\d[\d ().-]{6,14}\d", fullmatch=True),
    st.from_regex(r"[a-z0-9.+_-]{1,8}@[a-z0-9.-]{1,6}\.[a-z]{2,3}", fullmatch=True),
    st.from_regex(r"S\d{7}", fullmatch=True),
)


@given(st.lists(_PII_LIKE, max_size=6).map("".join))
def test_personal_data_redaction_never_raises_and_leaves_nothing_to_find_again(text: str) -> None:
    redactor = PiiRedactor(patterns=[r"S\d{7}"])
    once, _ = redactor(text)
    assert redactor(once) == (once, {})
