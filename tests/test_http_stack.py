"""The HTTP stack as a user's environment shapes it: proxies (HTTP_PROXY, HTTPS_PROXY,
ALL_PROXY, NO_PROXY) through a real forward proxy on loopback, CA bundles (SSL_CERT_FILE,
SSL_CERT_DIR) against the loopback server over TLS, the connection limit, and network failures
in the user's words. The CLI runs as a process where the environment is the point.

Nothing here leaves the machine: the proxy forwards to loopback only and refuses every tunnel,
and a run whose failure would be to reach the Internet (the default base URL) runs under
tests.loopback_guard."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme

from rerank_cli.engines.api import client as client_module
from rerank_cli.engines.api.client import RerankClient, tls_verification
from rerank_cli.errors import ApiFailed
from rerank_cli.settings.resolution import Settings
from tests import loopback_guard
from tests.conftest import TEST_KEY, CliResult, RunCli, api_options
from tests.forward_proxy import ForwardProxy
from tests.server import Fault, RerankServer

REPO = Path(__file__).resolve().parent.parent
QUERY = "capital of France"
PARIS = "Paris is the capital of France."
BANANAS = "Bananas are yellow."
DEFAULT_RERANK_URL = "https://gigarouter.ai/v1/rerank"  # no --base-url
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the CLI as a process ------------------------------------------------------------------------


def run_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any proxy or CA variable (in either case: the
    developer's shell may have them), plus ``variables`` (proxy ones in both cases) and a config
    and cache of its own under ``home``."""
    ours = {name.upper() for name in (*PROXY_VARIABLES, *CA_VARIABLES)}
    env = {name: value for name, value in os.environ.items() if name.upper() not in ours}
    for name, value in variables.items():
        env[name] = value
        if name in PROXY_VARIABLES:
            env[name.lower()] = value
    env.update(RERANK_CONFIG_DIR=str(home / "config"), RERANK_CACHE_DIR=str(home / "cache"))
    return env


def rerank(
    args: list[str], env: dict[str, str], guarded: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m rerank_cli ARGS`` (under tests.loopback_guard if ``guarded``)."""
    module = "tests.loopback_guard" if guarded else "rerank_cli"
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def texts(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [orjson.loads(line)["text"] for line in done.stdout.splitlines()]


def error_of(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("rerank: error: ")]
    assert len(lines) == 1, stderr
    return lines[0].removeprefix("rerank: error: ")


def no_key(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert TEST_KEY not in done.stdout + done.stderr
    assert TEST_KEY[3:15] not in done.stdout + done.stderr
    return done


# --- proxies -------------------------------------------------------------------------------------


def test_http_proxy_carries_a_plain_http_run(
    server: RerankServer, proxy: ForwardProxy, tmp_path: Path
) -> None:
    env = run_env(tmp_path, GR_KEY=TEST_KEY, HTTP_PROXY=proxy.url)  # NO_PROXY unset
    done = no_key(rerank([QUERY, BANANAS, PARIS, "--base-url", server.base_url], env))
    assert done.returncode == 0, done.stderr
    assert texts(done) == [PARIS, BANANAS]
    assert proxy.request_lines == [f"POST {server.base_url}/rerank"]
    assert proxy.requests[0].host == f"127.0.0.1:{server.port}"
    (request,) = server.rerank_requests  # forwarded by the proxy
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "ALL_PROXY"])
def test_a_proxy_that_refuses_the_tunnel_is_named(
    proxy: ForwardProxy, tmp_path: Path, variable: str
) -> None:
    env = run_env(tmp_path, GR_KEY=TEST_KEY, **{variable: proxy.url})
    done = no_key(rerank([QUERY, PARIS, "--max-retries", "0"], env, guarded=True))
    assert done.returncode == 4, done.stderr
    assert proxy.request_lines == ["CONNECT gigarouter.ai:443"]
    assert error_of(done.stderr) == (
        f"{DEFAULT_RERANK_URL}: failed after 1 attempt: "
        f"the proxy at 127.0.0.1:{proxy.port} refused the connection (HTTP 403)"
    )


def test_no_proxy_bypasses_the_proxy(
    server: RerankServer, proxy: ForwardProxy, tmp_path: Path
) -> None:
    env = run_env(tmp_path, GR_KEY=TEST_KEY, HTTP_PROXY=proxy.url, NO_PROXY="127.0.0.1")
    done = no_key(rerank([QUERY, BANANAS, PARIS, "--base-url", server.base_url], env))
    assert done.returncode == 0, done.stderr
    assert texts(done) == [PARIS, BANANAS]
    assert proxy.requests == []
    assert len(server.rerank_requests) == 1


def set_proxies(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """This process's proxy variables (httpx reads os.environ) exactly ``variables``."""
    for name in list(os.environ):
        if name.upper() in PROXY_VARIABLES:
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setenv(name.lower(), value)


def test_an_unreachable_proxy_is_named(cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    set_proxies(monkeypatch, HTTPS_PROXY=f"http://127.0.0.1:{port}")
    loopback_guard.install(monkeypatch.setattr)
    result = cli(QUERY, PARIS, "--max-retries", "0", env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 4, result.stderr
    assert error_of(result.stderr) == (
        f"{DEFAULT_RERANK_URL}: failed after 1 attempt: "
        f"cannot reach the proxy at 127.0.0.1:{port} (connection refused)"
    )


def test_a_proxy_whose_name_does_not_resolve_is_named(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard fails the lookup as a resolver would, before anything is asked.
    set_proxies(monkeypatch, HTTPS_PROXY="http://proxy.invalid:3128")
    loopback_guard.install(monkeypatch.setattr)
    result = cli(QUERY, PARIS, "--max-retries", "0", env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 4, result.stderr
    assert error_of(result.stderr).startswith(
        f"{DEFAULT_RERANK_URL}: failed after 1 attempt: "
        "cannot reach the proxy at proxy.invalid:3128 (DNS lookup failed for proxy.invalid: "
    )


def test_the_key_goes_in_clear_text_to_no_remote_proxy(
    cli: RunCli, server: RerankServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loopback base URL over http:// is allowed; through a proxy elsewhere it would not be
    # this machine any more (TEST-NET-1, RFC 5737: never contacted, the guard makes sure).
    set_proxies(monkeypatch, HTTP_PROXY="http://192.0.2.1:3128")
    loopback_guard.install(monkeypatch.setattr)
    result = cli(QUERY, PARIS, *api_options(server), env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 2, result.stderr
    assert error_of(result.stderr) == (
        "refusing to send the API key in clear text to the proxy at 192.0.2.1:3128 "
        f"(http://127.0.0.1:{server.port}); add 127.0.0.1 to NO_PROXY, use https://, "
        "or --allow-insecure if you mean it"
    )
    assert server.requests == []


# --- CA bundles ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[RerankServer]:
    """The loopback server over TLS, with a certificate for 127.0.0.1 from ``authority``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with RerankServer(api_key=TEST_KEY, ssl_context=context) as running:
        yield running


def test_ssl_cert_file_is_honoured(
    tls_server: RerankServer, authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    args = [QUERY, BANANAS, PARIS, "--base-url", tls_server.base_url, "--max-retries", "0"]
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    trusted = no_key(
        rerank(args, run_env(tmp_path / "a", GR_KEY=TEST_KEY, SSL_CERT_FILE=str(bundle)))
    )
    assert trusted.returncode == 0, trusted.stderr
    assert texts(trusted) == [PARIS, BANANAS]
    untrusted = no_key(rerank(args, run_env(tmp_path / "b", GR_KEY=TEST_KEY)))
    assert untrusted.returncode == 4, untrusted.stderr
    assert error_of(untrusted.stderr) == (
        f"{tls_server.base_url}/rerank: failed after 1 attempt: TLS certificate of 127.0.0.1 "
        "not trusted (unable to get local issuer certificate); set SSL_CERT_FILE to your CA bundle"
    )
    assert len(tls_server.rerank_requests) == 1  # the untrusted run sent nothing


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to hash a CA dir")
def test_ssl_cert_dir_is_honoured(
    tls_server: RerankServer, authority: trustme.CA, tmp_path: Path
) -> None:
    directory = tmp_path / "certs"
    directory.mkdir()
    authority.cert_pem.write_to_path(str(directory / "test-ca.pem"))
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    args = [QUERY, BANANAS, PARIS, "--base-url", tls_server.base_url, "--max-retries", "0"]
    done = no_key(rerank(args, run_env(tmp_path, GR_KEY=TEST_KEY, SSL_CERT_DIR=str(directory))))
    assert done.returncode == 0, done.stderr
    assert texts(done) == [PARIS, BANANAS]


# --- connections ---------------------------------------------------------------------------------


def test_connections_are_limited_to_concurrency(api_cli: RunCli, server: RerankServer) -> None:
    documents = [f"document number {i}" for i in range(40)]
    result = api_cli("q", *documents, "--batch-size", "2", "-j", "2", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert len(server.rerank_requests) == 20
    assert server.connections_accepted <= 2  # kept alive, never more than -j at once
    assert len(server.connections_used) <= 2


# --- network failures in the user's words --------------------------------------------------------


def failure(result: CliResult) -> str:
    assert result.exit_code == 4, result.stderr
    return error_of(result.stderr).partition(": failed after ")[2]


def test_connection_refused_in_the_error_and_the_retry_notice(cli: RunCli) -> None:
    port = closed_port()
    base = f"http://127.0.0.1:{port}/v1"
    result = cli(
        QUERY, PARIS, "--base-url", base, "--max-retries", "1", "-v", env={"GR_KEY": TEST_KEY}
    )
    assert failure(result) == f"2 attempts: connection refused by 127.0.0.1:{port}"
    assert f"rerank: connection refused by 127.0.0.1:{port}; retrying in " in result.stderr


def test_the_server_closing_the_connection_in_the_error_and_the_retry_notice(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.fail_first(2, Fault.dropped())
    result = api_cli(QUERY, PARIS, "--max-retries", "1", "-v")
    reason = "the server closed the connection without answering"
    assert failure(result) == f"2 attempts: {reason}"
    assert f"rerank: {reason}; retrying in " in result.stderr


def test_no_answer_in_time(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault.slow(30))
    result = api_cli(QUERY, PARIS, "--max-retries", "0", "--timeout", "0.3", "--wait-cold", "0")
    assert failure(result) == "1 attempt: no answer within 0.3 s"


def test_a_certificate_for_another_name_is_rejected(
    authority: trustme.CA, tmp_path: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)  # not for 127.0.0.1
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # trusted, but for another name
    with RerankServer(api_key=TEST_KEY, ssl_context=context) as server:
        result = cli(
            QUERY, PARIS, *api_options(server), "--max-retries", "0", env={"GR_KEY": TEST_KEY}
        )
        assert server.requests == []
    assert failure(result) == (
        "1 attempt: TLS certificate of 127.0.0.1 rejected "
        "(IP address mismatch, certificate is not valid for '127.0.0.1'.)"
    )


# --- the CA bundle: loaded for https:// base URLs only -------------------------------------------
#
# An http:// base URL gets a context that trusts nothing instead (client.tls_verification):
# loading the bundle costs 30-80 ms a run, and the client never verifies a server's certificate
# then. What must not change is anything else: each case below runs both ways, with that context
# and with httpx's default (True), and must end the same.


@pytest.mark.parametrize(("scheme", "loads"), [("http", 0), ("https", 1)])
def test_the_ca_bundle_is_loaded_for_https_base_urls_only(
    monkeypatch: pytest.MonkeyPatch, scheme: str, loads: int
) -> None:
    calls: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        calls.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    set_proxies(monkeypatch)

    async def enter() -> None:
        async with RerankClient(Settings(base_url=f"{scheme}://127.0.0.1:9/v1", api_key=TEST_KEY)):
            pass

    asyncio.run(enter())
    assert len(calls) == loads


def test_the_context_for_http_base_urls_trusts_nothing_and_verifies() -> None:
    context = tls_verification("http://127.0.0.1:1/v1")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    assert tls_verification("https://gigarouter.ai/v1") is True
    assert tls_verification("HTTPS://gigarouter.ai/v1") is True


@pytest.fixture
def tls_proxy(authority: trustme.CA, server: RerankServer) -> Iterator[ForwardProxy]:
    """An https:// forward proxy (its certificate from ``authority``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with ForwardProxy(ssl_context=context) as running:
        yield running


# variables ({proxy}, {tls_proxy}, {ca} filled in) → the expected outcome, and which proxy
# (if any) carried the request
PATHS: dict[str, tuple[dict[str, str], str, str | None]] = {
    "no proxy": ({}, "ok", None),
    "HTTP_PROXY": ({"HTTP_PROXY": "{proxy}"}, "ok", "proxy"),
    "ALL_PROXY": ({"ALL_PROXY": "{proxy}"}, "ok", "proxy"),
    "HTTPS_PROXY (not for http://)": ({"HTTPS_PROXY": "{proxy}"}, "ok", None),
    "NO_PROXY": ({"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"}, "ok", None),
    "https:// proxy, SSL_CERT_FILE": (
        {"HTTP_PROXY": "{tls_proxy}", "SSL_CERT_FILE": "{ca}"},
        "ok",
        "tls_proxy",
    ),
    "https:// proxy, untrusted": (
        {"HTTP_PROXY": "{tls_proxy}"},
        "TLS certificate of the proxy at {tls_proxy_address} not trusted "
        "(unable to get local issuer certificate); set SSL_CERT_FILE to your CA bundle",
        None,
    ),
}


@pytest.mark.parametrize("case", PATHS.keys())
def test_an_http_base_url_ends_the_same_without_the_ca_bundle(
    server: RerankServer,
    proxy: ForwardProxy,
    tls_proxy: ForwardProxy,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    values = {
        "proxy": proxy.url,
        "tls_proxy": tls_proxy.url,
        "tls_proxy_address": f"127.0.0.1:{tls_proxy.port}",
        "ca": str(bundle),
    }
    variables, expected, carrier = PATHS[case]
    filled = {name: value.format(**values) for name, value in variables.items()}
    set_proxies(monkeypatch, **{k: v for k, v in filled.items() if k in PROXY_VARIABLES})
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        if name in filled:
            monkeypatch.setenv(name, filled[name])
    config = Settings(base_url=server.base_url, api_key=TEST_KEY, max_retries=0, wait_cold=0)

    def outcome() -> tuple[str, list[str], list[str], int]:
        async def go() -> list[float]:
            async with RerankClient(config) as client:
                return await client.rerank(QUERY, [PARIS, BANANAS])

        before = len(server.rerank_requests)
        try:
            asyncio.run(go())
            ended = "ok"
        except ApiFailed as error:
            ended = str(error).partition(": failed after 1 attempt: ")[2]
        seen = (proxy.request_lines, tls_proxy.request_lines)
        proxy.requests.clear()
        tls_proxy.requests.clear()
        return ended, *seen, len(server.rerank_requests) - before

    fast = outcome()
    monkeypatch.setattr(client_module, "tls_verification", lambda base_url: True)
    plain = outcome()
    assert fast == plain
    ended, via_proxy, via_tls_proxy, answered = fast
    assert ended == expected.format(**values)
    rerank_line = [f"POST {server.base_url}/rerank"]
    assert via_proxy == (rerank_line if carrier == "proxy" else [])
    assert via_tls_proxy == (rerank_line if carrier == "tls_proxy" else [])
    assert answered == (1 if expected == "ok" else 0)


def test_the_first_retry_is_said_without_v_and_the_rest_with_it(cli: RunCli) -> None:
    """A refused connection does not leave the terminal blank through every retry."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    base = ["q", "a", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "2"]
    quiet = cli(*base, env={"GR_KEY": TEST_KEY})
    assert quiet.exit_code == 4
    assert quiet.stderr.count("retrying in") == 1
    assert "(-v shows each retry)" in quiet.stderr
    loud = cli(*base, "-v", env={"GR_KEY": TEST_KEY})
    assert loud.stderr.count("retrying in") == 2
