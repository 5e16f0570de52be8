"""Marts as Python readers name them: `{{ ref('model') }}` in a reader's `.sql` file.

Python that reads the marts (the web overview, the drift checks, the demo's report) keeps its
queries in `.sql` files beside it and names each mart the way dbt models do; `load_query`
resolves every `ref` to the relation dbt builds ("schema"."alias" from the dbt manifest), so a
renamed schema or alias reaches the readers, and each reader is declared as a dbt exposure
(dbt_project/models/exposures.yml) whose `depends_on` lists exactly the marts its files name.
Queries are Jinja: a folder's fragments are shared with `{% include 'fragment.sql' %}`;
parameters stay psycopg's (`%(name)s`), never rendered into the text.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from evals.dbt import ensure_manifest


class MartError(LookupError):
    """The manifest is missing, or names no model of that name."""


def read_relations(manifest: Path) -> dict[str, str]:
    """Every model of a dbt manifest: name -> quoted "schema"."alias"."""
    try:
        nodes = json.loads(manifest.read_text())["nodes"]
    except FileNotFoundError:
        raise MartError(
            f"no dbt manifest at {manifest}: `evals.dbt.ensure_manifest()` writes it"
        ) from None
    return {
        node["name"]: f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        for node in nodes.values()
        if node["resource_type"] == "model"
    }


_LOCK = threading.Lock()


@cache
def _project_relations() -> dict[str, str]:
    return read_relations(ensure_manifest())


def project_relations() -> dict[str, str]:
    """The project's relations, from a manifest parsed once per process if missing or stale."""
    with _LOCK:  # one parse even when the first page requests arrive together
        return _project_relations()


def relation(model: str, relations: dict[str, str] | None = None) -> str:
    """The relation dbt builds for `model`, ready to put in SQL."""
    known = project_relations() if relations is None else relations
    try:
        return known[model]
    except KeyError:
        raise MartError(f"the dbt project has no model {model!r}") from None


@cache
def _environment(folder: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_query(path: Path, relations: dict[str, str]) -> str:
    """The SQL of `path` with every `{{ ref('model') }}` resolved and includes inlined."""
    template = _environment(path.parent).get_template(path.name)
    return template.render(ref=lambda model: relation(model, relations))


@cache
def load_query(path: Path) -> str:
    """`render_query` against the project's manifest, once per file and process."""
    return render_query(path, project_relations())
