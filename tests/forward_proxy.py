"""A small forward HTTP proxy on loopback that records what it is asked, for the proxy tests.

- ``GET``/``POST`` … in absolute form (``POST http://host:port/path HTTP/1.1``): forwarded to the
  target only if it is loopback, or if ``routes`` maps its host to a loopback address (so a test
  can use a remote-looking URL); anything else gets 502 without any connection being made.
- ``CONNECT host:port``: always 403 after recording it (a tunnel could lead off the machine).

Every request line is recorded in ``requests`` (method, target, Host header) before anything
else happens. Threaded (one thread per client connection), keep-alive towards the client, one
upstream connection per forwarded request.

    with ForwardProxy(routes={"remote.example": ("127.0.0.1", server.port)}) as proxy:
        ...  # HTTP_PROXY=proxy.url
        assert proxy.requests[0].target == "http://remote.example/v1/rerank"
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "ProxyRequest"]

# Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: not forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    target: str  # as on the request line: an absolute URL, or host:port for CONNECT
    host: str | None  # the Host header

    def __str__(self) -> str:
        return f"{self.method} {self.target}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ForwardProxy:
    def __init__(
        self,
        routes: Mapping[str, tuple[str, int]] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``routes``: host (or ``host:port``) of a target → the loopback address to send its
        requests to instead; the Host header and the request's path are kept. ``ssl_context``
        (server side, certificate loaded): the proxy itself speaks TLS (an https:// proxy)."""
        for address in (routes or {}).values():
            assert is_loopback(address[0]), f"a route off loopback: {address!r}"
        self.routes = dict(routes or {})
        self._ssl_context = ssl_context
        self.requests: list[ProxyRequest] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ForwardProxy:
        self._httpd = _ProxyServer(("127.0.0.1", 0), _Handler, self)
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

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "proxy not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with an ``ssl_context``): what HTTP_PROXY and
        friends should be."""
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def request_lines(self) -> list[str]:
        with self._lock:
            return [str(r) for r in self.requests]

    def _record(self, request: ProxyRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _upstream(self, host: str, port: int) -> tuple[str, int] | None:
        """Where a request for ``host:port`` goes, or None (not loopback, not routed)."""
        for key in (f"{host}:{port}", host):
            if key in self.routes:
                return self.routes[key]
        return (host, port) if is_loopback(host) else None


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], proxy: ForwardProxy
    ) -> None:
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError):  # a client that did not trust us
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rerank-test-proxy/1"
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.proxy._lock:
            self.server.proxy._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read proxy.requests

    def _answer(self, status: int, text: str, close: bool = False) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_CONNECT(self) -> None:
        self.server.proxy._record(ProxyRequest("CONNECT", self.path, self.headers.get("Host")))
        self._answer(403, "this proxy opens no tunnels\n", close=True)

    def _forward(self) -> None:
        proxy = self.server.proxy
        proxy._record(ProxyRequest(self.command, self.path, self.headers.get("Host")))
        body = self._body()
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self._answer(400, "absolute http:// URL expected\n")
            return
        upstream = proxy._upstream(target.hostname, target.port or 80)
        if upstream is None:
            self._answer(502, f"not forwarded off loopback: {target.hostname}\n")
            return
        path = target.path or "/"
        if target.query:
            path += f"?{target.query}"
        connection = http.client.HTTPConnection(*upstream, timeout=60)
        try:
            connection.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as error:
            self._answer(502, f"upstream failed: {error}\n")
            return
        finally:
            connection.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in {*_HOP_BY_HOP, "content-length", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = _forward
    do_POST = _forward
