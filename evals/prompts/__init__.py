"""Prompt templates: Jinja2 files rendered to chat messages, versioned by their content hash.

A template names its messages with top-level blocks (`{% block system %}`, `{% block user %}`,
optionally `{% block assistant %}`), each rendered on its own into one message. Splitting on
blocks rather than on markers in the rendered text means a submission that contains "user:" or
a fake delimiter can never forge an extra message.

The version is the first 16 hex digits of sha256 over the template text, so a run row's
`prompt_version` pins the exact wording; `ensure_prompt_version` stores the text under that
version in raw.prompt_versions the first time it is used. Replay can render stored inputs with
any other version or an edited file through `PromptTemplate.from_text`.

Templates are rendered in Jinja's sandbox with StrictUndefined: a prompt file given on the
command line cannot reach Python internals, and a missing variable is an error, not "".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    import psycopg

PROMPTS_DIR = Path(__file__).parent
MESSAGE_ROLES = ("system", "user", "assistant")
RUBRIC_GRADER = "rubric_grader"
ANSWER_CANDIDATE = "answer_candidate"
ANSWER_JUDGE = "answer_judge"
PAIRWISE_JUDGE = "pairwise_judge"


class PromptError(ValueError):
    """A template is missing, does not parse, or defines no message block."""


_ENV = SandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def prompt_version(text: str) -> str:
    """The content hash that names a template's wording."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PromptTemplate:
    """One template: its name, exact text and version; `render` turns variables into messages."""

    name: str
    text: str
    version: str
    _compiled: Any = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_text(cls, name: str, text: str) -> PromptTemplate:
        try:
            compiled = _ENV.from_string(text)
        except TemplateSyntaxError as exc:
            raise PromptError(f"prompt {name!r} line {exc.lineno}: {exc.message}") from None
        if not any(role in compiled.blocks for role in MESSAGE_ROLES):
            raise PromptError(
                f"prompt {name!r} defines no message block ({', '.join(MESSAGE_ROLES)})"
            )
        return cls(name=name, text=text, version=prompt_version(text), _compiled=compiled)

    @classmethod
    def from_file(cls, path: Path | str, name: str | None = None) -> PromptTemplate:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptError(f"{path}: {exc.strerror or exc}") from None
        return cls.from_text(name or path.stem, text)

    def __reduce__(self):
        """Pickled as its text (the compiled Jinja template is not picklable): a run's worker
        processes receive their prompts so."""
        return (PromptTemplate.from_text, (self.name, self.text))

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """Messages in block order (system, user, assistant); empty blocks are left out."""
        context = self._compiled.new_context(variables)
        messages = []
        for role in MESSAGE_ROLES:
            block = self._compiled.blocks.get(role)
            if block is None:
                continue
            content = "".join(block(context)).strip()
            if content:
                messages.append({"role": role, "content": content})
        return messages


@cache
def load_prompt(name: str) -> PromptTemplate:
    """A template shipped in evals/prompts/ by name (without `.j2`)."""
    path = PROMPTS_DIR / f"{name}.j2"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.j2")))
        raise PromptError(f"no prompt named {name!r} (shipped: {shipped})")
    return PromptTemplate.from_file(path, name)


def ensure_prompt_version(conn: psycopg.Connection, name: str, version: str, template: str) -> bool:
    """Store a template under (name, version) once; True if it was new. Commits."""
    with conn.transaction():
        cur = conn.execute(
            "insert into raw.prompt_versions (prompt_name, prompt_version, template)"
            " values (%s, %s, %s) on conflict do nothing",
            (name, version, template),
        )
        return cur.rowcount == 1


def stored_prompt(conn: psycopg.Connection, name: str, version: str) -> PromptTemplate | None:
    """A template as stored in raw.prompt_versions (for replay with an older version)."""
    row = conn.execute(
        "select template from raw.prompt_versions where prompt_name = %s and prompt_version = %s",
        (name, version),
    ).fetchone()
    return None if row is None else PromptTemplate.from_text(name, row[0])
