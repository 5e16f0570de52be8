"""Templates and the filters pages use; every value a template prints is scrubbed of secrets.

Scrubbing is Jinja's `finalize` hook rather than a filter someone must remember: whatever a
template prints from the warehouse (an error message, a prompt, a model's output) passes the
shared scrubber `evals.redact` (with the web token as one more literal secret) before it is escaped.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from evals import redact

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


class Scrubber:
    """evals.redact plus the literal secrets only the app knows (its own token).

    Results are memoised: a page prints the same model, stage and status names hundreds of
    times, and each scrub reads the whole environment for secret values. The server's
    environment does not change while it runs, so a memo entry never goes stale.
    """

    MEMO_MAX = 50_000

    def __init__(self, literal_secrets: tuple[str, ...] = (), patterns: tuple[str, ...] = ()):
        self._extra = tuple(re.compile(re.escape(s)) for s in literal_secrets if s)
        self._extra += redact.compile_patterns(patterns)
        self._memo: dict[str, str | None] = {}

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        if (done := self._memo.get(text)) is not None:
            return done
        if len(self._memo) >= self.MEMO_MAX:
            self._memo.clear()
        done = self._memo[text] = redact.scrub(text, self._extra)
        return done

    def value(self, value: Any) -> Any:
        """A JSON-like value with strings scrubbed and secret-named keys dropped (exports)."""
        return redact.scrub_value(value, self._extra)


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def _usd(value: Any) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _when(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _minute(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else _when(value)


def _scalar(value: Any) -> Any:
    """Floats with 4 significant digits (a p-value of 7.76e-19 stays legible); others as is."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def make_environment(scrub: Scrubber) -> Environment:
    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, Markup):
            return value
        if isinstance(value, str):
            return scrub(value)
        return value

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=_num,
        pct=_pct,
        usd=_usd,
        ms=_ms,
        when=_when,
        minute=_minute,
        scalar=_scalar,
        pretty_json=lambda value: _pretty_json(scrub.value(value)),
    )
    return env
