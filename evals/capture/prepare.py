"""What happens to a captured row before it leaves the process: secrets and personal data out,
verdict in.

Runs on the capture writer's thread, never on the app's. Redaction is the shared scrubber
(`evals.redact`), then personal data (`capture.redact_pii`: e-mail addresses, phone numbers) and
the deployment's own patterns (`capture.redact_patterns`), then an optional callable for
anything patterns cannot express. How many distinct values of each kind a row lost is kept in
its `attributes.redacted` (never the values). Params never keep credentials or transport
settings: only what shapes the model's answer is worth replaying.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from evals.redact import REDACTED, PiiRedactor, is_secret_name, scrub, secret_env_values
from evals.runlog import RunRecord

# Keys of LiteLLM call kwargs / optional params that are credentials, endpoints or transport.
_NEVER_CAPTURED = re.compile(
    r"(?i)^(api_key|api_base|base_url|api_version|headers|extra_headers|organization|"
    r"aws_.*|vertex_credentials|azure_ad_token.*|client|timeout|max_retries|metadata|"
    r"litellm_.*|mock_response|num_retries|user_api_key.*|proxy_.*)$"
    r"|(?i:(^|_)(key|token|secret|password|authorization|cookie|credentials?))$"
)
_TEXT_FIELDS = ("rubric", "submission", "prior_context", "output_text", "error_message")
_JSON_FIELDS = ("inputs", "messages", "feedback", "attributes")
REDACTED_ATTRIBUTE = "redacted"

Redact = Callable[[str], str]
_MEMO_CHARS = 8_000_000  # bound on memoised text (~16-32 MB)
VerdictParser = Callable[[RunRecord], None]


def clean_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """The generation params worth storing and replaying: no credentials, no transport knobs."""
    if not params:
        return {}
    return {
        key: value
        for key, value in params.items()
        if value is not None and value != {} and not _NEVER_CAPTURED.search(key)
    }


class RowPreparer:
    """Applied to every captured row on the writer thread: redact, then parse the verdict."""

    def __init__(
        self,
        pii: PiiRedactor | None = None,
        redact: Redact | None = None,
        parse_verdict: VerdictParser | None = None,
        env_secrets: Sequence[str] | None = None,
    ):
        """`env_secrets`: a snapshot of the secret environment values for a preparer that lives
        for one batch (the API takes one per request); None reads the environment once per row
        (reading it is ~50 µs, once per text it was most of the writer's time)."""
        self._pii = pii
        self._fixed_env_secrets = env_secrets
        self._env_secrets = env_secrets
        self._redact = redact
        self._parse_verdict = parse_verdict
        self._seen: dict[str, tuple[str, dict[str, frozenset[str]]]] = {}
        self._seen_chars = 0
        self._found: dict[str, set[str]] = {}

    def text(self, value: str | None) -> str | None:
        """One string, redacted. Memoised: the scrubber costs ~1.5 µs per character, and a row
        repeats its texts (rubric and submission sit in their columns, in `inputs` and inside the
        messages) while the system prompt and rubrics repeat across rows."""
        if not value:
            return value
        done = self._seen.get(value)
        if done is None:
            text = scrub(value, env_secrets=self._env_secrets)
            text, found = self._pii(text) if self._pii is not None else (text, {})
            done = (self._redact(text) if self._redact is not None else text, found)
            if self._seen_chars > _MEMO_CHARS:
                self._seen.clear()
                self._seen_chars = 0
            self._seen[value] = done
            self._seen_chars += len(value)
        for kind, values in done[1].items():
            self._found.setdefault(kind, set()).update(values)
        return done[0]

    def value(self, value: Any) -> Any:
        """A JSON-like value (as `evals.redact.scrub_value`): values under secret-named keys
        replaced by [REDACTED], every string redacted through the memo."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: REDACTED
                if isinstance(key, str) and is_secret_name(key) and item not in (None, "")
                else self.value(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def __call__(self, record: RunRecord) -> RunRecord:
        self._found = {}
        if self._fixed_env_secrets is None:
            self._env_secrets = secret_env_values()
        for name in _TEXT_FIELDS:
            setattr(record, name, self.text(getattr(record, name)))
        for name in _JSON_FIELDS:
            setattr(record, name, self.value(getattr(record, name)))
        record.params = self.value(clean_params(record.params))
        if self._found:
            record.attributes[REDACTED_ATTRIBUTE] = {
                kind: len(values) for kind, values in sorted(self._found.items())
            }
        if self._parse_verdict is not None and record.status == "ok":
            self._parse_verdict(record)
        return record
