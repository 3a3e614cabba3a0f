"""A loopback rerank server that speaks gigarouter's protocol, with scripted faults.

It is the test double of the hosted API and a reference implementation of what the client must
cope with: real HTTP/1.1 with keep-alive on real sockets (stdlib ``ThreadingHTTPServer``, one
thread per connection), deterministic scores, and every misbehaviour a real server shows.

Endpoints (paths as gigarouter serves them):

- ``POST /v1/rerank`` ``{"model", "query", "documents": [str]}`` →
  ``{"results": [{"index", "relevance_score"}]}`` sorted by score, best first (``shape`` can
  switch to Voyage's ``{"data": [...]}`` or TEI's bare ``[{"index", "score"}]``).
- ``GET /v1/models`` → ``{"object": "list", "data": [{"id", "object", "kind", "pricing"}]}``.
- ``GET /account?key=KEY`` → ``{"balance", "currency"}``.
- ``GET /_stats`` (this server's own, for a benchmark in another process): what it counted.
- Errors: ``{"error": {"code", "message"[, "retry_after_s"]}}``.

gigarouter documents no schema for ``/v1/models`` and ``/account``: the shapes above are this
server's own; only the price of Qwen/Qwen3-Reranker-0.6B ($0.008 per 1,000 documents) is the
provider's, the other two prices are invented for tests.

In a test::

    with RerankServer(api_key="gr-secret") as server:
        server.add_faults(Fault.error(503, headers={"retry-after-ms": "5"}), Fault.dropped())
        ...  # point the client at server.base_url
        assert server.billed_documents == 3

As a process (the benchmark): ``python -m tests.server --port 0 --latency 0.05`` prints its base
URL (``http://127.0.0.1:PORT/v1``) as the first line of stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import http
import json
import math
import re
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = ["MODELS", "Fault", "RecordedRequest", "RerankServer", "score"]

Shape = Literal["results", "data", "tei"]

# id → (kind, price in USD per 1,000 documents)
MODELS: dict[str, tuple[str, float]] = {
    "Qwen/Qwen3-Reranker-0.6B": ("rerank", 0.008),
    "cross-encoder/ms-marco-MiniLM-L6-v2": ("rerank", 0.002),
    "BAAI/bge-reranker-base": ("rerank", 0.004),
}

# Short machine codes for the error bodies, as gigarouter's ``error.code``.
ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credit",
    403: "forbidden",
    404: "model_not_found",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable_entity",
    425: "too_early",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "model_loading",
    504: "gateway_timeout",
}

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def score(query: str, document: str) -> float:
    """The server's relevance score, a pure function in [0, 1).

    Mostly the share of the query's words found in the document; a hash of the pair adds less
    than 0.01 so that scores rarely tie, yet never reorders documents with different overlap.
    """
    return scorer(query)(document)


def scorer(query: str) -> Callable[[str], float]:
    """:func:`score` with the query's part done once (a request scores many documents)."""
    terms = _words(query)
    prefix = zlib.crc32(f"{query}\0".encode("utf-8", "surrogatepass"))

    def score_document(document: str) -> float:
        overlap = len(terms & _words(document)) / len(terms) if terms else 0.0
        tie = zlib.crc32(document.encode("utf-8", "surrogatepass"), prefix)
        return 0.99 * overlap + 0.01 * (tie / 2**32)

    return score_document


# ---------------------------------------------------------------------------------------------
# Faults


Rewrite = Callable[[list[dict[str, Any]]], Any]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by one ``POST /v1/rerank`` request.

    Applied in this order: wait ``delay`` seconds; ``drop`` the connection without answering;
    answer ``status`` with ``body`` (or an error body built from ``message``/``code``/
    ``retry_after_s``) and ``headers``; for a 200 with no ``body``, the normal answer passed
    through ``rewrite`` and, if ``truncate``, cut short. Use the constructors below.
    """

    status: int = 200
    body: bytes | None = None
    message: str | None = None
    code: str | None = None
    retry_after_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    rewrite: Rewrite | None = None
    reset: bool = False  # with drop: close with a TCP RST (SO_LINGER 0), not a FIN

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after_s: float | None = None,
        body: bytes | None = None,
    ) -> Fault:
        """Answer ``status`` with a gigarouter error body (or exactly ``body``)."""
        return cls(
            status=status,
            message=message,
            code=code,
            headers=dict(headers or {}),
            retry_after_s=retry_after_s,
            body=body,
        )

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, ``seconds`` late (a read timeout on the client's side)."""
        return cls(delay=seconds)

    @classmethod
    def dropped(cls) -> Fault:
        """Close the connection after reading the request, without answering."""
        return cls(drop=True)

    @classmethod
    def reset_connection(cls) -> Fault:
        """Read the request, then reset the connection (a TCP RST, as a crashed proxy or a
        load balancer sends), without answering."""
        return cls(drop=True, reset=True)

    @classmethod
    def malformed(cls) -> Fault:
        """A 200 whose body is not JSON."""
        return cls(body=b'{"results": [{"index": 0, "relevance_score": 0.5}')

    @classmethod
    def truncated(cls) -> Fault:
        """The normal answer with its full Content-Length promised, half of it sent, then the
        connection closed."""
        return cls(truncate=True)

    @classmethod
    def rewritten(cls, rewrite: Rewrite) -> Fault:
        """The normal answer's ``results`` list passed through ``rewrite``; whatever it returns
        is the JSON body (so it may also change the shape)."""
        return cls(rewrite=rewrite)

    @classmethod
    def missing_index(cls) -> Fault:
        """One result without an ``index``."""
        return cls.rewritten(lambda rs: {"results": [{"relevance_score": 0.5}, *rs[1:]]})

    @classmethod
    def duplicate_index(cls) -> Fault:
        """Two results for the same index (and none for another)."""
        return cls.rewritten(lambda rs: {"results": [rs[0], {**rs[1], "index": rs[0]["index"]}]})

    @classmethod
    def index_out_of_range(cls) -> Fault:
        """One index equal to the number of documents sent."""
        return cls.rewritten(lambda rs: {"results": [*rs[:-1], {**rs[-1], "index": len(rs)}]})

    @classmethod
    def fewer_results(cls) -> Fault:
        """One result fewer than documents sent."""
        return cls.rewritten(lambda rs: {"results": rs[:-1]})

    @classmethod
    def nan_score(cls) -> Fault:
        """A score written as the bare token ``NaN`` (not JSON, but Python's json writes it)."""
        return cls.rewritten(lambda rs: {"results": [{**rs[0], "relevance_score": math.nan}]})


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class RecordedRequest:
    """What the client sent: ``headers`` with lower-case names, ``body`` the parsed JSON (None if
    absent or invalid), ``connection`` a number per TCP connection (to see keep-alive)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    body: Any
    connection: int
    prefer_wait: int | None
    received: float = 0.0  # time.monotonic() when its request line had arrived

    @property
    def documents(self) -> list[str]:
        documents = self.body.get("documents") if isinstance(self.body, dict) else None
        return list(documents) if isinstance(documents, list) else []


def prefer_wait(value: str | None) -> int | None:
    """N from a ``Prefer: wait=N`` header (RFC 7240), if any."""
    for preference in (value or "").split(","):
        name, _, number = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return max(0, int(number.strip()))
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------------------------------
# The server


class RerankServer:
    """The server's configuration, its state, and its life cycle (``start``/``stop`` or
    ``with``). Attributes may be changed while it runs; they apply to the next request.

    - ``api_key``: the only key accepted (``Authorization: Bearer KEY``); None accepts any
      request, with or without a key.
    - ``latency``: seconds every rerank request takes before it is answered.
    - ``max_documents`` / ``too_many_status``: more documents than this in one request →
      ``too_many_status`` (413, or 400/422 as some servers do) with "too many documents".
    - ``shape``: ``results`` (gigarouter), ``data`` (Voyage) or ``tei`` (a bare list).
    - ``balance``: USD of prepaid credit, debited per document scored; ``out_of_credit``
      forces 402.
    - ``billed_documents``: documents scored in successful answers (what would be billed).
    - ``paths``: the rerank routes served (other providers: ``/rerank``, ``/v1/reranks``).
    - ``documents_field``: where the documents are (``texts`` for TEI); ``model_required``:
      False serves one model whatever the request names, or none (TEI).
    - ``max_document_tokens``: a document over this many tokens, counted as the Qwen3
      reranker prompt holds it (rerank_cli.tokens.QwenTokenizer with its lead), is a 400.
    - ``ssl_context`` (a server-side context with its certificate loaded): serve HTTPS; the
      handshake happens on each connection's thread.
    - ``rate_limit``: rerank requests per second, as a token bucket of ``rate_burst`` requests
      (None: one second's worth); over it → 429 with ``retry-after``/``retry-after-ms`` (until
      the next request is allowed), the error body's ``retry_after_s``, and OpenAI's
      ``x-ratelimit-{limit,remaining,reset}-requests`` (reset: until the bucket is full again),
      which every rerank answer carries in this mode (unless ``rate_limit_headers`` is False);
      ``throttled`` counts the 429s. None (the default): no limit.
    """

    def __init__(
        self,
        api_key: str | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.max_documents: int | None = None
        self.too_many_status = 413
        self.paths: set[str] = {"/v1/rerank"}
        self.documents_field = "documents"
        self.model_required = True
        self.max_document_tokens: int | None = None
        self.shape: Shape = "results"
        self.models: dict[str, tuple[str, float]] = dict(MODELS)
        self.balance = 25.0
        self.out_of_credit = False
        self.faults: deque[Fault] = deque()
        self.requests: list[RecordedRequest] = []
        self.billed_documents = 0
        # Doctor modes (see scorer_for): scores that ignore the text, silent truncation.
        self.ignore_text = False
        self.truncate_tokens: int | None = None
        self.first_received: float | None = None  # time.monotonic() of the first rerank request
        self.last_answered: float | None = None  # … and of the last rerank answer sent
        self.in_flight = 0
        self.max_in_flight = 0
        self._address = (host, port)
        self._ssl_context = ssl_context
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._gate = 0  # hold rerank requests until this many are in flight together
        self._gate_timeout = 0.0
        self._warm_at = 0.0  # time.monotonic() at which a cold model is ready
        self._connections: dict[socket.socket, int] = {}
        self._connection_count = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Rate-limit mode (see the class docstring): the token bucket, filled when first used.
        self.rate_limit: float | None = None
        self.rate_burst: float | None = None
        self.rate_limit_headers = True  # False: the 429s' Retry-After only, no x-ratelimit-*
        self.throttled = 0
        self.admitted = 0  # … and the requests it let through, the first and last at (monotonic)
        self.first_admitted: float | None = None
        self.last_admitted: float | None = None
        self._tokens: float | None = None
        self._tokens_at = 0.0

    # -- life cycle

    def start(self) -> RerankServer:
        self._httpd = _HTTPServer(self._address, _Handler, self)
        if self._ssl_context is not None:
            self._httpd.socket = self._ssl_context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection, releasing held or delayed requests."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None

    def __enter__(self) -> RerankServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with an ``ssl_context``)."""
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the client's ``--base-url`` should be: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- scripting

    def add_faults(self, *faults: Fault) -> None:
        """Queue faults; each rerank request consumes the next one, if any."""
        with self._lock:
            self.faults.extend(faults)

    def fail_first(self, count: int, fault: Fault) -> None:
        """The next ``count`` rerank requests meet ``fault``."""
        self.add_faults(*([fault] * count))

    def hold_until_in_flight(self, count: int, timeout: float = 10.0) -> None:
        """Hold each rerank request until ``count`` are in flight together (then let all go,
        for good), or ``timeout`` seconds pass — proof of concurrency that needs no clock."""
        with self._lock:
            self._gate, self._gate_timeout = count, timeout

    def make_cold(self, seconds: float) -> None:
        """The model is cold for ``seconds``: requests get 503 + Retry-After, unless their
        ``Prefer: wait=N`` covers the rest of the warm-up, in which case they are held."""
        self._warm_at = time.monotonic() + seconds

    # -- views

    @property
    def rerank_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/rerank"]

    @property
    def batch_sizes(self) -> list[int]:
        """Documents per rerank request, in arrival order."""
        return [len(r.documents) for r in self.rerank_requests]

    @property
    def connections_used(self) -> set[int]:
        return {r.connection for r in self.requests}

    @property
    def connections_open(self) -> int:
        """TCP connections whose handler has not finished: 0 once a killed client's requests,
        held or half-read, are all done with (answered into a closed socket or dropped)."""
        with self._lock:
            return len(self._connections)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far, whether or not a request came on them."""
        with self._lock:
            return self._connection_count

    # -- used by the handler

    def _connection_opened(self, connection: socket.socket) -> int:
        with self._lock:
            self._connection_count += 1
            self._connections[connection] = self._connection_count
            return self._connection_count

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._lock.notify_all()
            if self._gate:
                self._lock.wait_for(
                    lambda: self.in_flight >= self._gate or self._stopping.is_set(),
                    timeout=self._gate_timeout,
                )
                self._gate = 0
                self._lock.notify_all()  # release the others now, not at their own timeouts

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _sleep(self, seconds: float) -> None:
        """Interruptible by :meth:`stop`, so a test never waits for a slow answer to end: a
        request held when the server stops gets no answer."""
        if seconds > 0 and self._stopping.wait(seconds):
            raise _Stopped()

    def _answered(self, request: RecordedRequest) -> None:
        with self._lock:
            if self.first_received is None or request.received < self.first_received:
                self.first_received = request.received
            self.last_answered = time.monotonic()

    def stats(self) -> dict[str, Any]:
        """Counters, as ``GET /_stats`` serves them."""
        with self._lock:
            return {
                "requests": len(self.requests),
                "rerank_requests": sum(r.path == "/v1/rerank" for r in self.requests),
                "billed_documents": self.billed_documents,
                "max_in_flight": self.max_in_flight,
                "throttled": self.throttled,
                "admitted": self.admitted,
                "first_admitted": self.first_admitted,
                "last_admitted": self.last_admitted,
                "first_received": self.first_received,
                "last_answered": self.last_answered,
            }

    # -- doctor modes: a broken server as `rerank doctor` must recognise it

    def scorer_for(self, query: str) -> Callable[[str], float]:
        """The scores this server gives: :func:`score`, unless a mode below is on.

        - ``ignore_text``: every document scores 0.5 plus noise under 0.0001 (a hash of the
          pair), whatever its text — a Qwen3-Reranker served without its prompt template.
        - ``truncate_tokens = N``: each document is scored on its first N words only, with no
          error — a server that cuts long documents silently (words stand for tokens here).
        """
        if self.ignore_text:
            prefix = zlib.crc32(f"{query}\0".encode("utf-8", "surrogatepass"))

            def constant(document: str) -> float:
                tie = zlib.crc32(document.encode("utf-8", "surrogatepass"), prefix)
                return 0.5 + 0.0001 * (tie / 2**32)

            return constant
        score_document = scorer(query)
        limit = self.truncate_tokens
        if limit is None:
            return score_document
        return lambda document: score_document(" ".join(document.split()[:limit]))

    def _rate_limited(self) -> dict[str, str]:
        """Rate-limit mode: take a token for one rerank request and return the rate-limit
        headers of its answer, or raise the 429 (which takes none)."""
        with self._lock:
            rate = self.rate_limit
            if rate is None or rate <= 0:
                return {}
            burst = max(1.0, self.rate_burst if self.rate_burst is not None else rate)
            now = time.monotonic()
            if self._tokens is None:
                self._tokens = burst
            else:
                self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
                self.admitted += 1
                if self.first_admitted is None:
                    self.first_admitted = now
                self.last_admitted = now
            else:
                self.throttled += 1
            tokens = self._tokens
        headers = {
            "x-ratelimit-limit-requests": f"{rate:g}",
            "x-ratelimit-remaining-requests": str(math.floor(tokens)),
            "x-ratelimit-reset-requests": f"{(burst - tokens) / rate:.3f}s",
        }
        if not self.rate_limit_headers:
            headers = {}
        if allowed:
            return headers
        wait = (1.0 - tokens) / rate
        headers["retry-after"] = str(math.ceil(wait))
        headers["retry-after-ms"] = str(math.ceil(wait * 1000))
        raise _Answer(
            429,
            f"rate limited: {rate:g} requests per second",
            headers=headers,
            retry_after_s=round(wait, 3),
        )

    def _bill(self, model: str, count: int) -> None:
        with self._lock:
            self.billed_documents += count
            self.balance -= self.models[model][1] * count / 1000


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block stop()
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], app: RerankServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError):  # a client that did not trust us
            super().handle_error(request, client_address)


class _Stopped(Exception):
    """The server is stopping: close the connection without an answer."""


class _Answer(Exception):
    """Raised inside a handler to send an error answer at once."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after_s: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.headers = dict(headers or {})
        if body is None:
            error: dict[str, Any] = {
                "code": code or ERROR_CODES.get(status, "error"),
                "message": message or http.HTTPStatus(status).phrase,
            }
            if retry_after_s is not None:
                error["retry_after_s"] = retry_after_s
            body = json.dumps({"error": error}).encode()
        self.body = body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    server_version = "rerank-test-server/1"
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.app._connection_opened(self.connection)

    def finish(self) -> None:
        self.server.app._connection_closed(self.connection)
        with contextlib.suppress(OSError):  # the client may have gone away first
            super().finish()

    def parse_request(self) -> bool:
        # The request line is in: the request has arrived (its latency counts from here).
        self.arrived = time.monotonic()
        self.rate_headers: dict[str, str] = {}  # rate-limit mode: this request's headers
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests instead

    # -- plumbing

    def _read_request(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            raw=raw,
            body=body,
            connection=self.connection_id,
            prefer_wait=prefer_wait(self.headers.get("Prefer")),
            received=self.arrived,
        )
        self.server.app._record(request)
        return request

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.rate_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _check_key(self, given: str | None) -> None:
        expected = self.server.app.api_key
        if expected is not None and given != expected:
            missing = not given
            raise _Answer(401, "missing API key" if missing else "invalid API key")

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    # -- methods

    def do_GET(self) -> None:
        request = self._read_request()
        try:
            if request.path == "/v1/models":
                if self._bearer() is not None:  # public listing; a wrong key is still wrong
                    self._check_key(self._bearer())
                self._json(200, self._models())
            elif request.path == "/_stats":
                self._json(200, self.server.app.stats())
            elif request.path == "/account":
                keys = request.query.get("key") or []
                self._check_key(keys[0] if keys else None)
                self._json(200, {"balance": round(self.server.app.balance, 6), "currency": "USD"})
            else:
                raise _Answer(404, f"no route {request.path}", code="not_found")
        except _Answer as answer:
            self._send(answer.status, answer.body, answer.headers)

    def do_POST(self) -> None:
        request = self._read_request()
        app = self.server.app
        if request.path not in app.paths:
            answer = _Answer(404, f"no route {request.path}", code="not_found")
            self._send(answer.status, answer.body)
            return
        try:
            self.rate_headers = app._rate_limited()
        except _Answer as answer:  # over the rate limit: answered at once, and not in flight
            self._send(answer.status, answer.body, answer.headers)
            return
        app._enter()
        try:
            self._rerank(request)
        except _Answer as answer:
            self._send(answer.status, answer.body, answer.headers)
        except _Stopped:
            self.close_connection = True
        finally:
            app._leave()
            app._answered(request)

    def _rerank(self, request: RecordedRequest) -> None:
        app = self.server.app
        fault = app._next_fault() or Fault()
        app._sleep(fault.delay)
        if fault.drop:
            self.close_connection = True  # finish() closes the socket: no answer at all
            if fault.reset:  # linger on, for 0 s: close() sends RST instead of FIN
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                # Closed here, the reading file first (the socket closes for real once it
                # is): the server's own shutdown(SHUT_WR) would send a FIN ahead of the RST.
                self.rfile.close()
                self.connection.close()
            return
        if fault.status != 200:
            raise _Answer(
                fault.status,
                fault.message,
                fault.code,
                fault.headers,
                fault.retry_after_s,
                fault.body,
            )
        if fault.body is not None:
            self._send(200, fault.body, fault.headers)
            return
        # The latency is the time to answer, scoring included (as on a real server, where
        # the model's work is most of it): so the scoring overlaps other requests' waits.
        answer_at = request.received + app.latency
        self._check_key(self._bearer())
        model, query, documents = self._validate(request.body)
        if app.max_document_tokens is not None:
            self._check_tokens(documents, app.max_document_tokens)
        if app.out_of_credit or app.balance <= 0:
            raise _Answer(402, "out of credit: top up your balance")
        if app.max_documents is not None and len(documents) > app.max_documents:
            raise _Answer(
                app.too_many_status,
                f"too many documents: {len(documents)} > {app.max_documents} per request",
            )
        self._wait_until_warm(request.prefer_wait)
        score_document = app.scorer_for(query)
        scores = [score_document(document) for document in documents]
        results = sorted(
            ({"index": i, "relevance_score": s} for i, s in enumerate(scores)),
            key=lambda r: -float(r["relevance_score"]),
        )
        payload: Any = {"model": model, "results": results, "usage": {"documents": len(scores)}}
        if fault.rewrite is not None:
            payload = fault.rewrite(results)
        elif app.shape == "data":
            payload = {"data": results, "model": model}
        elif app.shape == "tei":
            payload = [{"index": r["index"], "score": r["relevance_score"]} for r in results]
        app._bill(model, len(documents))
        # allow_nan: the NaN fault needs the bare token on the wire.
        body = json.dumps(payload, allow_nan=True).encode()
        app._sleep(answer_at - time.monotonic())
        self._send(200, body, fault.headers, truncate=fault.truncate)

    @staticmethod
    def _check_tokens(documents: list[str], limit: int) -> None:
        from rerank_cli.providers.tokens import QWEN3_DOCUMENT_LEAD, QwenTokenizer

        tokenizer = QwenTokenizer(lead=QWEN3_DOCUMENT_LEAD)
        for index, document in enumerate(documents):
            count = tokenizer.count(document)
            if count > limit:
                raise _Answer(400, f"document {index} has {count} tokens, over {limit}")

    def _validate(self, body: Any) -> tuple[str, str, list[str]]:
        app = self.server.app
        if not isinstance(body, dict):
            raise _Answer(400, "body must be a JSON object")
        model = body.get("model")
        query, documents = body.get("query"), body.get(app.documents_field)
        if not app.model_required:
            model = next(iter(app.models)) if model is None or model not in app.models else model
        if not isinstance(model, str):
            raise _Answer(400, "model: a string is required")
        if not isinstance(query, str):
            raise _Answer(400, "query: a string is required")
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            raise _Answer(400, f"{app.documents_field}: a list of strings is required")
        if not documents:
            raise _Answer(400, f"{app.documents_field}: at least one document is required")
        if model not in self.server.app.models:
            raise _Answer(404, f"model {model} not found or not currently served")
        return model, query, documents

    def _wait_until_warm(self, wait: int | None) -> None:
        app = self.server.app
        remaining = app._warm_at - time.monotonic()
        if remaining <= 0:
            return
        if wait is not None and wait >= remaining:
            app._sleep(remaining)
            return
        raise _Answer(
            503,
            "model is warming up",
            headers={"Retry-After": str(math.ceil(remaining))},
            retry_after_s=round(remaining, 3),
        )

    def _models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "kind": kind,
                    "pricing": {"price": price, "unit": "1k documents", "currency": "USD"},
                }
                for model, (kind, price) in self.server.app.models.items()
            ],
        }


# ---------------------------------------------------------------------------------------------
# As a process


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per rerank request")
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    parser.add_argument("--max-documents", type=int, default=None)
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="rerank requests per second (token bucket)"
    )
    parser.add_argument(
        "--rate-burst", type=float, default=None, help="the bucket's size (default: one second's)"
    )
    args = parser.parse_args(None if argv is None else list(argv))
    # A request whose latency is up must not wait out another thread's 5 ms GIL slice.
    sys.setswitchinterval(0.001)
    server = RerankServer(
        api_key=args.api_key, latency=args.latency, host=args.host, port=args.port
    )
    server.max_documents = args.max_documents
    server.rate_limit, server.rate_burst = args.rate_limit, args.rate_burst
    server.start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
