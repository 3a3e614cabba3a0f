"""``python -m tests.loopback_guard ARGS…``: the CLI, as ``python -m rerank_cli ARGS…``, in a
process that can reach loopback only. Looking up any other name, or connecting to any other
address, fails at once with an OSError that says so.

For tests whose way to fail would be to reach the Internet: the default base URL with a proxy
that the client ignored, say. The guard makes such a failure a wrong message, not a packet."""

from __future__ import annotations

import ipaddress
import runpy
import socket
import sys
from collections.abc import Callable
from typing import Any

BLOCKED = "blocked by tests.loopback_guard"


def is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0]).is_loopback
    except ValueError:
        return False


def install(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Guard this process; ``patch`` is how (``monkeypatch.setattr`` undoes it after a test)."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: {BLOCKED}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise ConnectionRefusedError(f"{address[0]}: {BLOCKED}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    patch(socket, "getaddrinfo", getaddrinfo)
    patch(socket.socket, "connect", connect)
    patch(socket.socket, "connect_ex", connect_ex)


if __name__ == "__main__":
    install()
    sys.argv = ["rerank", *sys.argv[1:]]
    runpy.run_module("rerank_cli", run_name="__main__", alter_sys=True)
