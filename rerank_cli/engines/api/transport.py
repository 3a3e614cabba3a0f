"""HTTP/1.1 for httpx on asyncio streams, with h11 speaking the protocol.

httpx's default transport (httpcore on anyio) spends about a millisecond of the event loop per
request; a rerank run is many small requests on a few keep-alive connections, with
``--concurrency`` of them answered at nearly the same moment, so that time delays every next
request. This transport does the same work — h11 for framing, keep-alive, chunked or
close-delimited bodies — in a third of it (``make bench``: the time a round of 8 requests takes
beyond the server's latency falls from ~3.4 ms to ~2.4 ms).

Not here, on purpose: HTTP/2, streaming request bodies, Unix sockets. Proxies from the
environment are still honoured: httpx mounts its own transports for proxied URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import h11
import httpx

T = TypeVar("T")
READ_SIZE = 65_536
# h11's default limit on a response head; an API's headers are a few hundred bytes.
MAX_HEAD = 64 * 1024

Origin = tuple[str, str, int]  # scheme, host, port


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)

    def usable(self) -> bool:
        """Idle and still open. A server that closed a keep-alive connection has sent EOF, which
        the event loop has seen by the time the connection is wanted again; anything it sent
        while the connection was idle (a 408 before closing, say) would be taken for the next
        answer, so such a connection is not used either."""
        unread = getattr(self.reader, "_buffer", b"")  # StreamReader's buffer: no public view
        return not (self.reader.at_eof() or unread or self.writer.is_closing())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _within(seconds: float | None, step: Awaitable[T]) -> T:
    """``step``, or TimeoutError after ``seconds``. Not asyncio.wait_for: before 3.12 it can
    swallow a cancellation that arrives as the step completes, and a failed batch would not
    stop the others."""
    if seconds is None:
        return await step
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await step
    else:  # pragma: no cover (3.10)
        import anyio

        with anyio.fail_after(seconds):
            return await step


class Http11Transport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None, max_idle: int = 10) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        connection = await self._connection(request, timeouts.get("connect"))
        try:
            response = await self._exchange(connection, request, body, timeouts)
        except BaseException:
            connection.close()  # half a conversation: never reused
            raise
        if connection.h11.our_state is h11.DONE and connection.h11.their_state is h11.DONE:
            connection.h11.start_next_cycle()
            self._release(request, connection)
        else:  # the server closes it (Connection: close, or a body that ends with the stream)
            connection.close()
        return response

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- connections

    @staticmethod
    def _origin(request: httpx.Request) -> Origin:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        return url.scheme, url.host, port

    async def _connection(self, request: httpx.Request, timeout: float | None) -> _Connection:
        idle = self._idle.get(self._origin(request), [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return await self._connect(request, timeout)

    async def _connect(self, request: httpx.Request, timeout: float | None) -> _Connection:
        scheme, host, port = self._origin(request)
        tls = None
        if scheme == "https":
            tls = self._ssl_context or httpx.create_ssl_context()
        try:
            reader, writer = await _within(
                timeout,
                asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                ),
            )
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from None
        return _Connection(reader, writer)

    def _release(self, request: httpx.Request, connection: _Connection) -> None:
        idle = self._idle.setdefault(self._origin(request), [])
        if len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.close()

    # -- one request and its response

    async def _exchange(
        self,
        connection: _Connection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        conversation = connection.h11
        try:
            head = h11.Request(
                method=request.method, target=request.url.raw_path, headers=request.headers.raw
            )
            data = conversation.send(head) or b""
            if body:
                data += conversation.send(h11.Data(data=body)) or b""
            data += conversation.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as error:
            raise httpx.LocalProtocolError(str(error), request=request) from None
        try:
            connection.writer.write(data)
            await _within(timeouts.get("write"), connection.writer.drain())
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as error:
            raise httpx.WriteError(str(error) or type(error).__name__, request=request) from None
        return await self._receive(connection, request, timeouts.get("read"))

    async def _receive(
        self, connection: _Connection, request: httpx.Request, timeout: float | None
    ) -> httpx.Response:
        conversation = connection.h11
        head: h11.Response | None = None
        parts: list[bytes] = []
        while True:
            try:
                event: Any = conversation.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error), request=request) from None
            if event is h11.NEED_DATA:
                try:
                    data = await _within(timeout, connection.reader.read(READ_SIZE))
                except TimeoutError:
                    raise httpx.ReadTimeout("timed out reading", request=request) from None
                except OSError as error:
                    raise httpx.ReadError(
                        str(error) or type(error).__name__, request=request
                    ) from None
                conversation.receive_data(data)  # b"": the server closed the connection
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError(
                    "server disconnected without sending a response", request=request
                )
            # h11.InformationalResponse (1xx): the final answer follows
        assert head is not None  # h11 never ends a message it has not started
        return httpx.Response(
            head.status_code,
            headers=[(name, value) for name, value in head.headers],
            stream=httpx.ByteStream(b"".join(parts)),  # httpx decodes gzip & co. from here
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )
