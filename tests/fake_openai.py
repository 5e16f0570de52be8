"""A local OpenAI-compatible chat server with scripted faults, for tests and benchmarks.

Real LiteLLM clients (`openai/<name>` with `api_base=server.api_base`) talk to it over loopback
HTTP, so the whole client path — connection pool, SDK parsing, LiteLLM exception mapping — is
exercised; only the provider is fake. A plain asyncio server (no framework) keeps its CPU cost
per request tiny, so it can serve 256 concurrent 1 s calls on a small machine.

Faults are scripted per request: `server.script(marker, ["rate_limit", "ok"])` makes the first
request whose body contains `marker` get a 429, the next one succeed; requests matching no
script get `server.default` (a behaviour name). `server.held = True` keeps every reply waiting
until it is set back to False (to line clients up: `server.in_flight` counts who waits).
Behaviours:

    ok            200, a chat completion whose content is `server.reply(request_json)`
    rate_limit    429 with `Retry-After: server.retry_after` and an OpenAI-style error body
    server_error  500 whose message quotes the request's Authorization header (a realistic leak)
    slow          waits `server.slow_s` before answering (beyond any sane deadline)
    reset         closes the connection with a TCP RST, no response
    malformed     200 with a body that is not JSON
    not_json      200, a valid completion whose content is not the JSON the prompt asked for
    auth          401 whose message echoes the key bare ("Incorrect API key provided: ...")
    not_found     404, an OpenAI-style "model does not exist" error

Use the `fake_openai` fixture (import it into a test module), or run this file as a script for
a standalone server (`python tests/fake_openai.py --latency 1 --port 0` prints the port). A
server in another process reports its counters at `GET /stats` (requests, the most in flight at
once, the first request's arrival and the last reply's time) and zeroes them at
`POST /stats/reset`: what benchmarks check a client's concurrency cap and throughput with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

BEHAVIOURS = (
    "ok",
    "rate_limit",
    "server_error",
    "slow",
    "reset",
    "malformed",
    "not_json",
    "auth",
    "not_found",
)
DEFAULT_REPLY = {
    "verdict": "pass",
    "score": 0.9,
    "feedback": {"strengths": ["clear"], "problems": [], "suggestion": "keep going"},
    "issue_tags": [],
}


def default_reply(request: dict[str, Any]) -> str:
    return json.dumps(DEFAULT_REPLY)


class FakeOpenAI:
    """The server; start() binds 127.0.0.1 on a free port and serves from a background thread."""

    def __init__(self, latency_s: float = 0.0, default: str = "ok") -> None:
        self.latency_s = latency_s
        self.default = default
        self.held = False
        self.retry_after = "1"
        self.slow_s = 30.0
        self.reply: Callable[[dict[str, Any]], str] = default_reply
        self.requests: list[dict[str, Any]] = []
        self.record_requests = True
        self.request_count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_at: float | None = None  # arrival of the first request since the reset
        self.arrivals: list[float] = []  # every request's arrival since the reset, in order
        self.last_reply_at: float | None = None
        self.behaviour_counts: Counter[str] = Counter()
        self._scripts: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, marker: str, behaviours: list[str]) -> None:
        """Requests containing `marker` get these behaviours in order, then the default."""
        unknown = set(behaviours) - set(BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown behaviours {unknown}")
        with self._lock:
            self._scripts.append((marker, list(behaviours)))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_count = 0
            self.max_in_flight = 0
            self.first_at = self.last_reply_at = None
            self.arrivals.clear()
            self.behaviour_counts.clear()

    def stats(self) -> dict[str, Any]:
        """The counters a client in another process can check (GET /stats)."""
        return {
            "requests": self.request_count,
            "max_in_flight": self.max_in_flight,
            "first_at": self.first_at,
            "last_reply_at": self.last_reply_at,
            "max_per_minute": most_within(self.arrivals, 60.0),
        }

    def _behaviour(self, body: str) -> str:
        with self._lock:
            self.request_count += 1
            behaviour = self.default
            for marker, queue in self._scripts:
                if queue and marker in body:
                    behaviour = queue.pop(0)
                    break
            self.behaviour_counts[behaviour] += 1
            return behaviour

    # --- HTTP -----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if lines[0].split(" ")[1].startswith("/stats"):
                    await self._stats(lines[0], writer)
                    continue
                arrived = time.time()
                self.arrivals.append(arrived)
                if self.first_at is None:
                    self.first_at = arrived
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if not await self._respond(lines[0], headers, body, writer):
                        return
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if not writer.is_closing():
                try:
                    writer.close()
                except RuntimeError:  # the loop is shutting down
                    pass

    async def _stats(self, request_line: str, writer: asyncio.StreamWriter) -> None:
        if request_line.startswith("POST /stats/reset"):
            self.reset_counts()
        payload = json.dumps(self.stats()).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    async def _respond(
        self, request_line: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        text = body.decode("utf-8", errors="replace")
        behaviour = self._behaviour(text)
        try:
            request = json.loads(text) if text else {}
        except ValueError:
            request = {}
        if self.record_requests:
            with self._lock:
                self.requests.append(
                    {
                        "line": request_line,
                        "headers": headers,
                        "json": request,
                        "behaviour": behaviour,
                        "at": time.time(),
                    }
                )
        while self.held:
            await asyncio.sleep(0.01)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if behaviour == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if behaviour == "slow":
            await asyncio.sleep(self.slow_s)
        status, extra, payload = 200, {}, b""
        if behaviour == "rate_limit":
            status, extra = 429, {"Retry-After": self.retry_after}
            payload = _error_body("Rate limit reached, slow down.", "rate_limit_exceeded")
        elif behaviour == "server_error":
            status = 500
            payload = _error_body(
                f"Internal error while handling request with {headers.get('authorization', '')}"
                f" at https://api.example.test/v1/chat?key={_bearer(headers)}",
                "server_error",
            )
        elif behaviour == "auth":
            status = 401
            payload = _error_body(
                f"Incorrect API key provided: {_bearer(headers)}.", "invalid_api_key"
            )
        elif behaviour == "not_found":
            status = 404
            payload = _error_body(
                f"The model `{request.get('model')}` does not exist.", "model_not_found"
            )
        elif behaviour == "malformed":
            payload = b'{"id": "chatcmpl-broken", "choices": [{"message": '
        else:
            content = (
                "Sure! Here is my assessment: it looks fine."
                if behaviour == "not_json"
                else self.reply(request)
            )
            payload = _completion(request, content)
        reason = {
            200: "OK",
            401: "Unauthorized",
            404: "Not Found",
            429: "Too Many Requests",
            500: "Internal Server Error",
        }[status]
        head = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Connection: keep-alive",
        ]
        head += [f"{name}: {value}" for name, value in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        self.last_reply_at = time.time()
        return True

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeOpenAI:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", port, backlog=2048)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)


def most_within(times: list[float], window_s: float) -> int:
    """The most of the sorted `times` inside any window of `window_s` seconds: what an rpm
    limit caps when the window is a minute."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def _bearer(headers: dict[str, str]) -> str:
    return headers.get("authorization", "").removeprefix("Bearer ").strip()


def _error_body(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


def _completion(request: dict[str, Any], content: str) -> bytes:
    prompt_chars = sum(len(str(m.get("content") or "")) for m in request.get("messages", []))
    usage = {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(content) // 4 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"{request.get('model', 'fake')}-2024-01-01",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": usage,
        }
    ).encode()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started fake server (no latency, every request `ok` unless scripted)."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--reply", help="The content of every reply (default: a grade's JSON).")
    args = parser.parse_args()
    server = FakeOpenAI(latency_s=args.latency)
    if args.reply is not None:
        server.reply = lambda request: args.reply
    server.record_requests = False
    server.start(args.port)
    print(server.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
