"""``rerank models`` and ``rerank account`` through the real entry point. The account URL
carries the key in its query string: it must never reach stdout or stderr, whatever the server
answers, not even percent-encoded."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_plus

import orjson
import pytest

from tests.conftest import TEST_KEY, CliResult, RunCli, api_options
from tests.server import MODELS, RerankServer

FAST_RETRY = {"retry-after-ms": "1"}
# Characters a query string must percent-encode: the encoded form is another string to hide.
ODD_KEY = "gr-k3y/9f8e+7d6c=5b4a&SECRET"
ODD_KEY_ENCODED = "gr-k3y%2F9f8e%2B7d6c%3D5b4a%26SECRET"


def no_key(result: CliResult, *keys: str) -> CliResult:
    """None of ``keys`` (default: the test key) appears in anything printed, not even a part."""
    for key in keys or (TEST_KEY,):
        for output in (result.stdout.decode("utf-8", "replace"), result.stderr):
            assert key not in output
            assert key[3:15] not in output
    return result


def error_line(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("rerank: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("rerank: error: ")


# --- a server that answers GETs as a test scripts them --------------------------------------------

Answer = tuple[int, dict[str, str], bytes]


class ScriptedServer:
    """Answers every GET with ``answer(path with query)`` → (status, headers, body); records
    the paths asked for."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.answer = answer
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                status, headers, body = outer.answer(self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll: shutdown() waits for the loop to notice (0.5 s by default).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo(status: int, headers: dict[str, str] | None = None) -> Callable[[str], Answer]:
    """An error answer quoting the request's path and query, as received and decoded: the
    worst a server can do with a key in the URL."""

    def answer(path: str) -> Answer:
        message = f"cannot serve {path} (that is {unquote_plus(path)})"
        body = json.dumps({"error": {"code": "oops", "message": message}}).encode()
        return status, {"Content-Type": "application/json", **(headers or {})}, body

    return answer


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[str], Answer]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answer: Callable[[str], Answer]) -> ScriptedServer:
        servers.append(ScriptedServer(answer).__enter__())
        return servers[-1]

    yield start
    for server in servers:
        server.__exit__()


# --- rerank models -------------------------------------------------------------------------------


def test_models_as_json_lines_in_a_pipe(api_cli: RunCli, server: RerankServer) -> None:
    result = no_key(api_cli("models"))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.records() == [
        {
            "id": model,
            "kind": kind,
            "price": price,
            "unit": "1k documents",
            "usd_per_1k_documents": price,
        }
        for model, (kind, price) in MODELS.items()
    ]
    assert [r.path for r in server.requests] == ["/v1/models"]


def test_models_as_a_json_array(api_cli: RunCli) -> None:
    result = api_cli("models", "-o", "json")
    assert result.exit_code == 0, result.stderr
    listed = orjson.loads(result.stdout)
    assert [m["id"] for m in listed] == list(MODELS)
    assert listed[0]["usd_per_1k_documents"] == 0.008


def test_models_as_a_table_on_a_terminal(api_cli: RunCli) -> None:
    result = api_cli("models", stdout_tty=True, no_color=True)
    assert result.exit_code == 0, result.stderr
    header, *rows = result.text.splitlines()
    assert header.split() == ["id", "kind", "price", "unit"]
    assert rows[0].split() == ["Qwen/Qwen3-Reranker-0.6B", "rerank", "$0.008", "1k", "documents"]
    assert len(rows) == len(MODELS)


def test_models_needs_no_key_and_sends_none(cli: RunCli, server: RerankServer) -> None:
    result = cli("models", *api_options(server), env={"GR_KEY": ""})
    assert result.exit_code == 0, result.stderr
    assert "authorization" not in server.requests[0].headers


def test_models_with_a_rejected_key_is_exit_3(api_cli: RunCli, server: RerankServer) -> None:
    server.api_key = "gr-someone-elses-key"
    result = no_key(api_cli("models", "-v"))
    assert (result.exit_code, result.stdout) == (3, b"")
    assert "rejected" in error_line(result)


def test_an_empty_listing_is_exit_1(api_cli: RunCli, server: RerankServer) -> None:
    server.models = {}
    result = api_cli("models")
    assert (result.exit_code, result.stdout) == (1, b"")
    # Not an error: said without "error:"
    assert result.stderr.startswith("rerank: ") and result.stderr.endswith(" lists no models\n")
    assert "error:" not in result.stderr


def test_models_failing_is_exit_4_after_retries(
    cli: RunCli, scripted: Callable[[Callable[[str], Answer]], ScriptedServer]
) -> None:
    failing = scripted(echo(503, FAST_RETRY))
    result = cli("models", "--base-url", failing.base_url, "-v")
    assert (result.exit_code, result.stdout) == (4, b"")
    assert "/v1/models: failed after 7 attempts: HTTP 503" in error_line(result)
    assert result.stderr.count("retrying in") == 6  # -v shows each retry
    assert len(failing.paths) == 7


# --- rerank account ------------------------------------------------------------------------------


def test_account_balance_in_a_pipe_is_json(api_cli: RunCli, server: RerankServer) -> None:
    result = no_key(api_cli("account"))
    assert (result.exit_code, result.stderr) == (0, "")
    assert orjson.loads(result.stdout) == {"balance": 25.0, "currency": "USD"}
    (request,) = server.requests
    assert request.path == "/account"  # beside the API root, not under /v1
    assert request.query == {"key": [TEST_KEY]}


def test_account_balance_on_a_terminal_after_spending(
    api_cli: RunCli, server: RerankServer
) -> None:
    documents = [f"document {i}" for i in range(250)]
    assert api_cli("query", *documents).exit_code == 0
    result = no_key(api_cli("account", stdout_tty=True))
    assert result.exit_code == 0, result.stderr
    assert result.text == "balance: 24.998 USD\n"  # 25 - 250 × $0.008/1000


def test_account_without_a_key_sends_nothing(cli: RunCli, server: RerankServer) -> None:
    result = cli("account", *api_options(server), env={"GR_KEY": ""})
    assert (result.exit_code, result.stdout) == (3, b"")
    assert "no API key" in error_line(result)
    assert server.requests == []


def test_account_refuses_to_send_the_key_in_clear_text(cli: RunCli) -> None:
    result = cli("account", "--base-url", "http://api.example.invalid/v1", env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 2
    assert "clear text" in error_line(no_key(result))


def test_account_with_a_rejected_key(cli: RunCli, server: RerankServer) -> None:
    wrong = "gr-wrong-key-0123456789abcdef"
    result = cli("account", *api_options(server), "-v", env={"GR_KEY": wrong})
    no_key(result, wrong, TEST_KEY)
    assert (result.exit_code, result.stdout) == (3, b"")
    assert "rejected" in error_line(result)


@pytest.mark.parametrize("verbose", [[], ["-v"]])
@pytest.mark.parametrize(("status", "exit_code"), [(500, 4), (401, 3), (404, 3), (400, 3)])
def test_a_server_echoing_the_account_url_never_shows_the_key(
    cli: RunCli,
    scripted: Callable[[Callable[[str], Answer]], ScriptedServer],
    status: int,
    exit_code: int,
    verbose: list[str],
) -> None:
    echoing = scripted(echo(status, FAST_RETRY))
    result = cli("account", "--base-url", echoing.base_url, *verbose, env={"GR_KEY": ODD_KEY})
    assert echoing.paths[0] == f"/account?key={ODD_KEY_ENCODED}"  # what there is to hide
    no_key(result, ODD_KEY, ODD_KEY_ENCODED)
    assert (result.exit_code, result.stdout) == (exit_code, b"")
    message = error_line(result)
    if status == 401:
        assert "rejected" in message
    else:  # the server's echo is quoted, with the key masked in both its forms
        assert message.count("/account?key=gr-…CRET") == 2
    if status == 500:
        assert len(echoing.paths) == 7
        assert result.stderr.count("retrying in") == (6 if verbose else 1)  # the first, always


def test_account_answering_nonsense_is_exit_4(
    cli: RunCli, scripted: Callable[[Callable[[str], Answer]], ScriptedServer]
) -> None:
    def nonsense(path: str) -> Answer:
        return 200, {"Content-Type": "text/html"}, f"<html>{path}</html>".encode()

    server = scripted(nonsense)
    result = cli("account", "--base-url", server.base_url, env={"GR_KEY": ODD_KEY})
    no_key(result, ODD_KEY, ODD_KEY_ENCODED)
    assert result.exit_code == 4
    assert "invalid JSON" in error_line(result)


def test_account_with_nobody_listening(cli: RunCli) -> None:
    import socket

    with socket.socket() as probe:  # a free port, closed again
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli(
        "account",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "-v",
        env={"GR_KEY": ODD_KEY, "RERANK_MAX_RETRIES": "1", "RERANK_TIMEOUT": "2"},
    )
    no_key(result, ODD_KEY, ODD_KEY_ENCODED)
    assert result.exit_code == 4
    assert f"127.0.0.1:{port}/account: failed after 2 attempts" in error_line(result)
