"""The HTTP/1.1 transport against scripted servers on 127.0.0.1: body framings, keep-alive and
its end, informational responses, broken answers, timeouts, TLS. (Every client and engine test
also runs through it, against the loopback rerank server.)"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme

from rerank_cli.engines.api.transport import Http11Transport

# A scripted server: for each connection, read requests and send what the script says.
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def serving(
    script: Script, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """``(base URL, connections accepted)`` while ``script`` serves each connection."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted))
        try:
            await script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    try:
        host = "localhost" if tls else "127.0.0.1"  # the name the certificate is for
        yield f"{scheme}://{host}:{port}", accepted
    finally:
        server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def keep_answering(*responses: bytes) -> Script:
    """Answer each request on a connection with the next response, then keep the connection
    open (until the client goes)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_request(reader)
            writer.write(response)
            await writer.drain()
        await reader.read()  # until the client closes

    return script


async def get(
    transport: httpx.AsyncBaseTransport, url: str, timeout: float = 5.0
) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        return await client.post(url, content=b'{"q": 1}')


def run(coroutine: Awaitable[object]) -> object:
    async def main() -> object:
        return await coroutine

    return asyncio.run(main())


# --- framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        answer(b'{"ok": true}'),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"ok"\r\n7\r\n: true}\r\n0\r\n\r\n',
        b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"ok": true}'),
    ],
    ids=["content-length", "chunked", "after-100-continue"],
)
def test_bodies_by_every_framing(response: bytes) -> None:
    async def scenario() -> None:
        async with serving(keep_answering(response)) as (url, _):
            got = await get(Http11Transport(), url)
            assert got.status_code == 200
            assert got.json() == {"ok": True}

    run(scenario())


def test_a_body_that_ends_with_the_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok": true}')
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with serving(script) as (url, accepted):
            transport = Http11Transport()
            assert (await get(transport, url)).json() == {"ok": True}
            assert (await get(transport, url)).json() == {"ok": True}
            assert len(accepted) == 2  # not reused: the server ended it

    run(scenario())


def test_gzip_bodies_are_decoded_by_httpx() -> None:
    body = gzip.compress(b'{"ok": true}')

    async def scenario() -> None:
        async with serving(keep_answering(answer(body, "Content-Encoding: gzip"))) as (url, _):
            assert (await get(Http11Transport(), url)).json() == {"ok": True}

    run(scenario())


# --- keep-alive ----------------------------------------------------------------------------------


def test_one_connection_serves_requests_in_turn() -> None:
    async def scenario() -> None:
        responses = [answer(b"%d" % i) for i in range(3)]
        async with serving(keep_answering(*responses)) as (url, accepted):
            transport = Http11Transport()
            async with httpx.AsyncClient(transport=transport) as client:
                bodies = [(await client.post(url, content=b"x")).content for _ in range(3)]
            assert bodies == [b"0", b"1", b"2"]
            assert len(accepted) == 1

    run(scenario())


def test_connection_close_is_obeyed() -> None:
    async def scenario() -> None:
        closing = answer(b"a", "Connection: close")
        async with serving(keep_answering(closing)) as (url, accepted):
            transport = Http11Transport()
            await get(transport, url)
            await get(transport, url)
            assert len(accepted) == 2

    run(scenario())


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"a"))
        await writer.drain()
        writer.close()  # keep-alive promised, then the server times the connection out

    async def scenario() -> None:
        async with serving(script) as (url, accepted):
            transport = Http11Transport()
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.post(url, content=b"x")).content == b"a"
                await asyncio.sleep(0.05)  # the FIN arrives
                assert (await client.post(url, content=b"x")).content == b"a"
            assert len(accepted) == 2

    run(scenario())


def test_an_idle_connection_with_unasked_bytes_is_not_reused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"a"))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(answer(b"stale 408", status="408 Request Timeout"))  # unasked
        await writer.drain()
        await reader.read()

    async def scenario() -> None:
        async with serving(script) as (url, accepted):
            transport = Http11Transport()
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.post(url, content=b"x")).content == b"a"
                await asyncio.sleep(0.1)
                second = await client.post(url, content=b"x")
            assert (second.status_code, second.content) == (200, b"a")
            assert len(accepted) == 2

    run(scenario())


def test_idle_connections_are_capped_and_closed_on_aclose() -> None:
    async def scenario() -> None:
        async with serving(keep_answering(answer(b"a"))) as (url, accepted):
            transport = Http11Transport(max_idle=1)
            async with httpx.AsyncClient(transport=transport) as client:
                await asyncio.gather(*(client.post(url, content=b"x") for _ in range(3)))
                assert len(accepted) == 3
                assert sum(len(idle) for idle in transport._idle.values()) == 1
            assert transport._idle == {}

    run(scenario())


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        (b"", httpx.RemoteProtocolError),  # closed without a word
        (b"NOT HTTP AT ALL\r\n\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", httpx.RemoteProtocolError),
    ],
    ids=["no-answer", "garbage", "truncated"],
)
def test_broken_answers(sent: bytes, error: type[Exception]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sent)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with serving(script) as (url, _):
            with pytest.raises(error):
                await get(Http11Transport(), url)

    run(scenario())


def test_a_slow_answer_is_a_read_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def scenario() -> None:
        async with serving(script) as (url, _):
            with pytest.raises(httpx.ReadTimeout):
                await get(Http11Transport(), url, timeout=0.2)

    run(scenario())


def test_nothing_listening_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with serving(keep_answering()) as (url, _):
            pass  # the port is free again
        with pytest.raises(httpx.ConnectError):
            await get(Http11Transport(), url)

    run(scenario())


def test_a_cancelled_request_is_cancelled_and_its_connection_dropped() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def scenario() -> None:
        async with serving(script) as (url, _):
            transport = Http11Transport()
            task = asyncio.ensure_future(get(transport, url, timeout=10))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert transport._idle == {} or not any(transport._idle.values())

    run(scenario())


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    return context


def test_tls_with_a_trusted_certificate(authority: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def scenario() -> None:
        async with serving(keep_answering(answer(b"secure")), server_context(authority)) as (
            url,
            _,
        ):
            assert (await get(Http11Transport(trusting), url)).content == b"secure"

    run(scenario())


def test_tls_with_an_untrusted_certificate_is_a_connect_error(authority: trustme.CA) -> None:
    async def scenario() -> None:
        async with serving(keep_answering(answer(b"secure")), server_context(authority)) as (
            url,
            _,
        ):
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await get(Http11Transport(ssl.create_default_context()), url)

    run(scenario())
