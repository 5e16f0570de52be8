"""A generated sweep of a FastAPI app: every route, every parameter, adversarial values.

Routes and their parameters (path, query, header, cookie, form fields, JSON body fields) come
from the app's OpenAPI schema, which FastAPI derives from `app.routes` and each handler's
signature (it is generated even when the app does not serve it), plus the app's mounts. A route
added later — the JSON API included — is therefore swept without editing this file. A parameter
a handler reads without declaring it is invisible here: declare it (test_web checks that the
sweep covers the /runs filters).

What a response must never be: a 5xx, or a body that carries a Python traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from hypothesis import strategies as st
from starlette.routing import Mount

# Values a careless user, a broken client or an attacker sends. Strings are sent as UTF-8 with
# surrogates passed through (what a broken JavaScript client emits), percent-encoded in URLs.
ADVERSARIAL: tuple[str, ...] = (
    "\x00",
    "a\x00b",
    "\ud83d",  # a lone surrogate: half an emoji
    "\udfff tail",
    "9999-12-31",
    "0001-01-01",
    "10000-01-01",
    "2026-02-30",
    "-1",
    "0",
    "9223372036854775808",  # one past bigint
    "-99999999999999999999999999999",
    "1e309",
    "NaN",
    "x" * 5000,
    "é" * 300,
    "\u202eevil\u202c",  # right-to-left override
    "e\u0301\u0301\u0301",  # combining marks
    "' or 1=1 --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00",
    "//evil.example/",
    "",
    " ",
    "\r\nX-Injected: 1",
    "null",
    "[1,2,3]",
    '{"$ne": 1}',
)
# The few that broke the app before (issue 14): every parameter meets each on every test run.
SHARP: tuple[str, ...] = ("a\x00b", "\ud83d", "9999-12-31", "9223372036854775808")
WRONG_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "psycopg.errors.")


@dataclass(frozen=True)
class Operation:
    """One method of one route, with the names of everything a client can send it."""

    method: str
    path: str
    path_params: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    cookies: tuple[str, ...] = ()
    form: tuple[str, ...] = ()
    json_fields: tuple[str, ...] | None = None  # None: the operation takes no JSON body

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        """(where, name) of every parameter, path ones included."""
        return tuple(
            (where, name)
            for where, names in (
                ("path", self.path_params),
                ("query", self.query),
                ("header", self.headers),
                ("cookie", self.cookies),
                ("form", self.form),
                ("json", self.json_fields or ()),
            )
            for name in names
        )


def _resolve(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    if ref := schema.get("$ref"):
        found: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            found = found[part]
        return found
    return schema


def operations(app: FastAPI, prefix: str = "") -> list[Operation]:
    """Every (method, route) the app serves, with its parameters: the OpenAPI schema's operations
    (FastAPI builds it from app.routes, included routers flattened), those of every FastAPI app
    mounted in it (the JSON API under /api/v1, with a schema of its own), and other mounts."""
    spec = app.openapi()
    found: list[Operation] = []
    for route in app.routes:
        if isinstance(route, Mount) and isinstance(route.app, FastAPI):
            found += operations(route.app, prefix + route.path)
        elif isinstance(route, Mount):
            found.append(Operation("GET", f"{prefix}{route.path}/{{path}}", path_params=("path",)))
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_place: dict[str, list[str]] = {}
            for parameter in op.get("parameters", []):
                by_place.setdefault(parameter["in"], []).append(parameter["name"])
            content = op.get("requestBody", {}).get("content", {})
            form = next(
                (
                    _resolve(body["schema"], spec)
                    for kind, body in content.items()
                    if kind in ("application/x-www-form-urlencoded", "multipart/form-data")
                ),
                None,
            )
            body = content.get("application/json")
            found.append(
                Operation(
                    method=method.upper(),
                    path=prefix + path,
                    path_params=tuple(by_place.get("path", ())),
                    query=tuple(by_place.get("query", ())),
                    headers=tuple(by_place.get("header", ())),
                    cookies=tuple(by_place.get("cookie", ())),
                    form=tuple(form.get("properties", {})) if form else (),
                    json_fields=tuple(_resolve(body["schema"], spec).get("properties", {}))
                    if body
                    else None,
                )
            )
    return found


def wrong_methods(ops: Sequence[Operation]) -> Iterator[tuple[str, str]]:
    """(method, path) pairs no operation serves, on paths some operation does serve."""
    served: dict[str, set[str]] = {}
    for op in ops:
        served.setdefault(op.path, set()).add(op.method)
    for path, methods in served.items():
        for method in WRONG_METHODS:
            if method not in methods:
                yield method, path


def _wire(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _url_part(value: str) -> str:
    return quote(_wire(value), safe="")


@dataclass
class Call:
    """One request, ready for a TestClient: `client.request(**call.kwargs())`."""

    method: str
    url: str
    headers: dict[str, bytes] = field(default_factory=dict)
    content: bytes | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "content": self.content,
        }

    def __str__(self) -> str:
        return f"{self.method} {self.url[:300]} body={(self.content or b'')[:300]!r}"


def build_call(
    op: Operation,
    values: Mapping[tuple[str, str], str],
    *,
    known: Mapping[str, str],
    headers: Mapping[str, bytes] = {},
    json_body: bytes | None = None,
) -> Call:
    """The request for `op` with `values[(where, name)]`; a path parameter without a value gets
    `known[name]` (a real id, so the handler is reached), the rest are left out."""
    path = op.path
    for name in op.path_params:
        value = values.get(("path", name), known.get(name, "0"))
        path = path.replace("{" + name + "}", _url_part(value))
    query = "&".join(
        f"{_url_part(name)}={_url_part(v)}"
        for (where, name), v in values.items()
        if where == "query"
    )
    call = Call(op.method, path + (f"?{query}" if query else ""), dict(headers))
    for (where, name), value in values.items():
        if where == "header":
            call.headers[name] = _wire(value)
    cookies = [f"{name}={_url_part(v)}" for (where, name), v in values.items() if where == "cookie"]
    if cookies:
        call.headers["cookie"] = "; ".join(
            [
                *cookies,
                *([call.headers["cookie"].decode("latin-1")] if "cookie" in call.headers else []),
            ]
        ).encode("latin-1")
    if op.form:
        form = {name: v for (where, name), v in values.items() if where == "form"}
        form = {**{n: known[n] for n in op.form if n in known and n not in form}, **form}
        call.content = "&".join(f"{_url_part(k)}={_url_part(v)}" for k, v in form.items()).encode()
        call.headers["content-type"] = b"application/x-www-form-urlencoded"
    elif op.json_fields is not None:
        body = {name: v for (where, name), v in values.items() if where == "json"}
        call.content = json_body if json_body is not None else _wire(json.dumps(body))
        call.headers["content-type"] = b"application/json"
    return call


def problem(response) -> str | None:
    """Why a response breaks the promise (a 5xx, a traceback in the body), or None."""
    if response.status_code >= 500:
        return f"answered {response.status_code}: {response.text[:300]!r}"
    body = response.text
    if marker := next((m for m in TRACEBACK_MARKERS if m in body), None):
        return f"a traceback ({marker!r}) in a {response.status_code} body"
    return None


# JSON bodies that are not the object a route expects.
BROKEN_JSON: tuple[bytes, ...] = (b"", b"[1,2,3]", b'{"a":', b"null", b'"\\ud83d"', b"\xff\xfe")


def values_strategy() -> st.SearchStrategy[str]:
    """The catalogue, arbitrary text (surrogates included), and numbers past every limit."""
    return st.one_of(
        st.sampled_from(ADVERSARIAL),
        st.text(st.characters(codec=None, exclude_categories=()), max_size=60),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats().map(repr),
    )


def each_parameter_alone(
    ops: Sequence[Operation], values: Sequence[str]
) -> Iterator[tuple[Operation, dict[tuple[str, str], str]]]:
    """Every parameter of every operation with each of `values`, the others left out."""
    for op in ops:
        for parameter in op.parameters:
            for value in values:
                yield op, {parameter: value}
