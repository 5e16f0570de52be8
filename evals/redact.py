"""The one scrubber: secrets out of every error, log line and captured field; personal data out of
captured rows.

Provider errors are the usual leak: an SDK echoes the request URL (`?key=...`), a proxy quotes
the `Authorization` header, a misconfigured client prints the key it used. Two nets catch them:
patterns for the shapes credentials take (provider key prefixes, bearer tokens, `key=` pairs,
auth headers), and the literal values of environment variables whose names say they are secret
(`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`), which catches a key of any shape. Scrubbing is
idempotent and never raises, so it is safe on any path, including error handlers.

Captured rows hold learners' work, so capture also replaces personal data (`PiiRedactor`):
e-mail addresses, phone numbers and the deployment's own patterns, counting what it found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REDACTED = "[REDACTED]"
SECRET_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
# Shorter env values ("1", "true", a port) would shred ordinary text; real secrets are longer.
MIN_ENV_SECRET_LENGTH = 8

_SECRET_NAME = (
    r"(?:api[_-]?key|apikey|key|token|access[_-]?token|refresh[_-]?token|"
    r"secret|client[_-]?secret|password|passwd|pwd|auth|sig|signature)"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization-style headers, quoted or not: keep the header name, drop the credential.
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-goog-api-key|"
            r"x-auth-token|cookie)(\"?'?\s*[:=]\s*\"?'?)(?:(?:bearer|basic|token)\s+)?"
            r"[^\s\"',;}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1 {REDACTED}"),
    # key=value in URLs, query strings and prose; "api_key": "..." in JSON or reprs.
    (
        re.compile(rf"(?i)([?&;\s,(]|^){_SECRET_NAME}=([^&\s\"',;)]+)"),
        lambda m: m.group(0)[: m.group(0).index("=") + 1] + REDACTED,
    ),
    (
        re.compile(rf"(?i)([\"']{_SECRET_NAME}[\"']\s*:\s*[\"'])([^\"']+)([\"'])"),
        rf"\1{REDACTED}\3",
    ),
    # Credential shapes of common providers, wherever they appear.
    (re.compile(r"\bsk-(?:ant-|proj-|or-|live-|test-)?[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"\b(?:gsk|xai|pplx|hf|r8|nvapi|fw)_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (
        re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}"),
        REDACTED,
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"), REDACTED),
    # user:password@ in connection URLs.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
)

# Literal fragments one of which every match of the pattern at the same position must contain
# (lower-case for the case-insensitive patterns). Python's `re` scans every position of a long
# text for each pattern (~0.1 µs per character each); a substring test is ~100x cheaper, so a
# pattern whose fragments are absent is skipped. Captured production rows are kilobytes of code
# and prose, and most contain none of these.
_NAME_FRAGMENTS = ("key", "token", "secret", "passw", "pwd", "auth", "sig")
_TRIGGERS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("authorization", "api-key", "x-auth-token", "cookie"), True),
    (("bearer", "basic"), True),
    (_NAME_FRAGMENTS, True),
    (_NAME_FRAGMENTS, True),
    (("sk-",), False),
    (("gsk_", "xai_", "pplx_", "hf_", "r8_", "nvapi_", "fw_"), False),
    (("AIza",), False),
    (("AKIA", "ASIA"), False),
    (("xox",), False),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), False),
    (("eyJ",), False),
    (("://",), True),
)
assert len(_TRIGGERS) == len(_PATTERNS)
# Fewer, shorter fragments, one of which every fragment above contains: text holding none of
# them (most captured text) is scanned 18 times instead of 40 (each scan is the whole text).
_COVER: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("_", "sk-", "xox", "eyJ", "AIza", "AKIA", "ASIA"),
    ("key", "auth", "token", "secret", "passw", "pwd", "sig", "bearer", "basic", "cookie", "://"),
)
assert all(
    any(cover in fragment for cover in _COVER[ignore_case])
    for fragments, ignore_case in _TRIGGERS
    for fragment in fragments
)

_SECRET_KEY_NAME = re.compile(
    rf"(?i)^(?:x-)?{_SECRET_NAME}$|(?i:authorization|cookie)$|"
    r"(?i:_key|_token|_secret|_password)$"
)


def is_secret_name(name: str) -> bool:
    """True for a key whose value is a credential (api_key, Authorization, *_token, ...)."""
    return bool(_SECRET_KEY_NAME.search(name))


_REGISTERED_ENV: set[str] = set()


def register_secret_env(names: Iterable[str]) -> None:
    """Treat these variables' values as secrets whatever they are called.

    A model's `api_key_env` (or a webhook's `url_env`) may be named MY_LLM_CREDENTIAL, which no
    suffix rule knows; the configuration registers every variable it names as it is loaded.
    Names, not values, are kept: a key set or rotated later is still scrubbed.
    """
    _REGISTERED_ENV.update(names)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named or registered environment variables, longest first (so overlaps
    scrub whole)."""
    environ = os.environ if environ is None else environ
    values = {
        value
        for name, value in environ.items()
        if (name.upper().endswith(SECRET_ENV_SUFFIXES) or name in _REGISTERED_ENV)
        and len(value) >= MIN_ENV_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """User-supplied extra patterns (e.g. capture.redact_patterns); each match is replaced."""
    return tuple(re.compile(pattern) for pattern in patterns)


def scrub(
    text: str | None,
    extra: Iterable[re.Pattern[str]] = (),
    env_secrets: Sequence[str] | None = None,
) -> str | None:
    """`text` with every recognisable secret replaced by [REDACTED]; None stays None.

    `env_secrets` is a snapshot of `secret_env_values()` for callers scrubbing many texts at
    once: reading the environment is most of the cost of scrubbing a short text.
    """
    if not text:
        return text
    try:
        for value in secret_env_values() if env_secrets is None else env_secrets:
            if value in text:
                text = text.replace(value, REDACTED)
        lowered = text.lower()
        if any(cover in text for cover in _COVER[False]) or any(
            cover in lowered for cover in _COVER[True]
        ):
            for (pattern, replacement), (fragments, ignore_case) in zip(
                _PATTERNS, _TRIGGERS, strict=True
            ):
                haystack = lowered if ignore_case else text
                if any(fragment in haystack for fragment in fragments):
                    text = pattern.sub(replacement, text)
        for pattern in extra:
            text = pattern.sub(REDACTED, text)
    except Exception:  # a scrubber that raises would leak the unscrubbed error upstream
        return REDACTED
    return text


def scrub_value(value: Any, extra: Iterable[re.Pattern[str]] = ()) -> Any:
    """Scrub a JSON-like structure: strings are scrubbed, values under secret-named keys dropped."""
    extra = tuple(extra)
    if isinstance(value, str):
        return scrub(value, extra)
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str)
            and _SECRET_KEY_NAME.search(key)
            and value[key] not in (None, "")
            else scrub_value(value[key], extra)
            for key in value
        }
    if isinstance(value, list | tuple):
        return [scrub_value(item, extra) for item in value]
    return value


# --- personal data at capture -----------------------------------------------------------------

PII_KINDS = ("email", "phone")
CUSTOM = "custom"
"""The kind under which matches of the deployment's own patterns are counted."""
PII_TOKENS = {"email": "[EMAIL]", "phone": "[PHONE]", CUSTOM: REDACTED}

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
# A run of digits with phone separators; `_is_phone` decides (a regex alone cannot tell a
# number from a list of numbers or a decimal).
_PHONE = re.compile(r"(?<![\w+.])(?:\+|\(\s?)?\d[\d ().-]{6,}\d(?![\w])")
# The core every phone match contains. Without the leading lookbehind `re` can skip to the next
# digit instead of trying the pattern at every position: ~3x cheaper on text with no phone.
_PHONE_CORE = re.compile(r"\d[\d ().-]{6,}\d")
_DIGIT_GROUPS = re.compile(r"\d+")
_MAX_PASSES = 5


def _is_phone(text: str) -> bool:
    """9 to 15 digits; with a leading +, or in groups (last of 4+ digits), not one decimal point.

    Misses phone numbers written in pairs without a country code ("01 23 45 67 89") and bare
    digit runs; a deployment that needs them adds a pattern of its own.
    """
    groups = _DIGIT_GROUPS.findall(text)
    digits = sum(len(group) for group in groups)
    if not 9 <= digits <= 15:
        return False
    if text.startswith("+"):
        return True
    if len(groups) < 2 or len(groups[-1]) < 4:
        return False
    return not (len(groups) == 2 and "." in text)


class PiiRedactor:
    """Replaces personal data in captured text with a token per kind ([EMAIL], [PHONE], and
    [REDACTED] for the deployment's own patterns) and says which values it replaced."""

    def __init__(self, kinds: Iterable[str] = PII_KINDS, patterns: Iterable[str] = ()):
        rules: list[tuple[str, re.Pattern[str], Any]] = []
        if "email" in kinds:
            rules.append(("email", _EMAIL, None))
        if "phone" in kinds:
            rules.append(("phone", _PHONE, _is_phone))
        rules.extend((CUSTOM, pattern, None) for pattern in compile_patterns(patterns))
        self._rules = tuple(rules)

    def __call__(self, text: str) -> tuple[str, dict[str, frozenset[str]]]:
        """(redacted text, kind → the distinct values replaced). Repeated while a pass still
        finds something: a replacement can complete a match its neighbour started
        ("a@b.cc.@d.ee" → "[EMAIL].@d.ee"), and what is stored must hold nothing to find."""
        found: dict[str, set[str]] = {}
        for _ in range(_MAX_PASSES):
            text, hits = self._pass(text)
            for kind, values in hits.items():
                found.setdefault(kind, set()).update(values)
            if not hits:
                break
        return text, {kind: frozenset(values) for kind, values in found.items()}

    def _pass(self, text: str) -> tuple[str, dict[str, set[str]]]:
        found: dict[str, set[str]] = {}
        for kind, pattern, accept in self._rules:
            if (kind == "email" and "@" not in text) or (
                kind == "phone" and not _PHONE_CORE.search(text)
            ):
                continue
            hits: set[str] = set()

            def replace(match: re.Match[str], kind=kind, accept=accept, hits=hits) -> str:
                if accept is not None and not accept(match.group(0)):
                    return match.group(0)
                hits.add(match.group(0))
                return PII_TOKENS[kind]

            text = pattern.sub(replace, text)
            if hits:
                found.setdefault(kind, set()).update(hits)
        return text, found
