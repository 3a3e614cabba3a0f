"""The command line against the loopback server, through the real entry point: what it sent,
what it printed, and its exit code. Every retry hint here is a few milliseconds, so no test
waits for a backoff."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from rerank_cli import __version__
from rerank_cli.engines.api.client import RETRY_STATUSES
from tests import loopback_guard
from tests.conftest import TEST_KEY, CliResult, RunCli, api_options
from tests.forward_proxy import ForwardProxy
from tests.server import Fault, RerankServer, score

QUERY = "capital of France"
PARIS = "Paris is the capital of France."
BANANAS = "Bananas are yellow."
FAST_RETRY = {"retry-after-ms": "1"}


def no_key(result: CliResult) -> CliResult:
    """The key must not appear in anything printed, not even in part."""
    for output in (result.stdout.decode("utf-8", "replace"), result.stderr):
        assert TEST_KEY not in output
        assert TEST_KEY[3:15] not in output
    return result


def error_line(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("rerank: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("rerank: error: ")


# --- the "done when" example ---------------------------------------------------------------------


def test_paris_comes_first(api_cli: RunCli, server: RerankServer) -> None:
    result = no_key(api_cli(QUERY, PARIS, BANANAS))
    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert [r["text"] for r in records] == [PARIS, BANANAS]
    assert records[0] == {"rank": 1, "score": score(QUERY, PARIS), "index": 0, "text": PARIS}
    assert list(records[0]) == ["rank", "score", "index", "text"]
    assert result.stderr == ""
    assert server.batch_sizes == [2]


def test_rank_subcommand_and_environment_settings(cli: RunCli, server: RerankServer) -> None:
    env = {"RERANK_API_KEY": TEST_KEY, "RERANK_BASE_URL": server.base_url}
    result = no_key(cli("rank", QUERY, BANANAS, PARIS, env=env))
    assert result.exit_code == 0, result.stderr
    assert result.records()[0]["index"] == 1


# --- output formats ------------------------------------------------------------------------------


def test_table_on_a_terminal(api_cli: RunCli) -> None:
    result = api_cli(QUERY, PARIS, BANANAS, stdout_tty=True, no_color=True)
    assert result.exit_code == 0, result.stderr
    text = result.text
    assert "\x1b[" not in text
    assert text.index(PARIS) < text.index(BANANAS)
    assert f"{score(QUERY, PARIS):.4f}" in text
    header = text.splitlines()[0].split()
    assert header == ["#", "score", "text"]  # no source column for arguments


def test_table_shows_the_source_and_colour_on_a_terminal(
    api_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("docs.txt").write_text(f"{BANANAS}\n{PARIS}\n")
    result = api_cli(QUERY, "-i", "docs.txt", stdout_tty=True)
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" in result.text
    plain = api_cli(QUERY, "-i", "docs.txt", stdout_tty=True, no_color=True).text
    header, first, second = plain.splitlines()
    assert header.split() == ["#", "score", "text", "source"]
    assert first.split() == ["1", f"{score(QUERY, PARIS):.4f}", *PARIS.split(), "docs.txt:2"]
    assert second.split()[-1] == "docs.txt:1"


def test_jsonl_is_the_default_in_a_pipe_and_json_is_an_array(api_cli: RunCli) -> None:
    jsonl = api_cli(QUERY, PARIS, BANANAS)
    as_json = api_cli(QUERY, PARIS, BANANAS, "-o", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == jsonl.records()
    explicit = api_cli(QUERY, PARIS, BANANAS, "-o", "jsonl", stdout_tty=True)
    assert explicit.records() == jsonl.records()


def test_plain_prints_the_input_records_exactly(api_cli: RunCli, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_bytes(b"Bananas are yellow.\r\n\n  Paris is the capital of France.  \nFrance\n")
    result = api_cli(QUERY, "-i", str(docs), "-o", "plain")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        b"  Paris is the capital of France.  \nFrance\nBananas are yellow.\r\n"
    )


def test_plain_keeps_json_lines_as_read(api_cli: RunCli) -> None:
    stdin = b'{"id": 1, "body": "Bananas are yellow."}\n{"body":"Paris, capital of France"}\n'
    result = api_cli(QUERY, "--field", "body", "-o", "plain", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        b'{"body":"Paris, capital of France"}',
        b'{"id": 1, "body": "Bananas are yellow."}',
    ]
    records = api_cli(QUERY, "--field", "body", stdin=stdin).records()
    assert records[1]["document"] == {"id": 1, "body": "Bananas are yellow."}
    assert records[0]["source"] == {"file": "<stdin>", "line": 2}


def test_tsv_escapes_tab_newline_and_backslash(api_cli: RunCli) -> None:
    doc = "capital\tof\\France\nline two"
    result = api_cli(QUERY, doc, "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{score(QUERY, doc):.4f}\tcapital\\tof\\\\France\\nline two\n".encode()


# --- filters, quiet, verbose ---------------------------------------------------------------------


def test_top_k_and_min_score(api_cli: RunCli) -> None:
    docs = [PARIS, "France", BANANAS]
    assert [r["text"] for r in api_cli(QUERY, *docs, "-k", "2").records()] == [PARIS, "France"]
    above = api_cli(QUERY, *docs, "-s", "0.3").records()
    assert [r["text"] for r in above] == [PARIS, "France"]
    assert all(r["score"] >= 0.3 for r in above)
    assert [r["rank"] for r in api_cli(QUERY, *docs, "-s", "0.3", "-k", "1").records()] == [1]


def test_nothing_left_after_filters_is_exit_1(api_cli: RunCli) -> None:
    result = api_cli(QUERY, PARIS, BANANAS, "-s", "2")
    assert (result.exit_code, result.stdout) == (1, b"")
    assert result.stderr == "rerank: no results left after --top-k/--min-score\n"  # no "error:"


def test_quiet_tells_by_exit_code_only(api_cli: RunCli) -> None:
    found = api_cli(QUERY, PARIS, BANANAS, "-q", "-s", "0.5")
    assert (found.exit_code, found.stdout, found.stderr) == (0, b"", "")
    none = api_cli(QUERY, PARIS, BANANAS, "-q", "-s", "2")
    assert (none.exit_code, none.stdout, none.stderr) == (1, b"", "")


def test_verbose_prints_one_summary_on_stderr(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault.error(503, "warming up", headers=FAST_RETRY))
    result = no_key(api_cli(QUERY, PARIS, BANANAS, PARIS, "-v", "--batch-size", "1"))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "rerank: HTTP 503 (warming up); retrying in 0.0 s"
    summary = lines[-1]
    for part in ("3 documents", "2 unique", "2 scored by api", "3 requests", "1 retry,"):
        assert part in summary
    assert "docs/s" in summary
    assert len(result.records()) == 3


def test_duplicates_are_billed_once(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli(QUERY, PARIS, BANANAS, PARIS)
    assert [r["index"] for r in result.records()] == [0, 2, 1]
    assert server.billed_documents == 2


# --- what was sent -------------------------------------------------------------------------------


def test_request_headers(api_cli: RunCli, server: RerankServer) -> None:
    api_cli(QUERY, PARIS, BANANAS, "-m", "BAAI/bge-reranker-base")
    (request,) = server.rerank_requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["user-agent"] == f"rerank-cli/{__version__}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["prefer"] == "wait=30"
    assert request.body == {
        "model": "BAAI/bge-reranker-base",
        "query": QUERY,
        "documents": [PARIS, BANANAS],
    }


@pytest.mark.parametrize(("option", "prefer"), [("7", "wait=7"), ("0", None)])
def test_wait_cold(api_cli: RunCli, server: RerankServer, option: str, prefer: str | None) -> None:
    assert api_cli(QUERY, PARIS, "--wait-cold", option).exit_code == 0
    assert server.rerank_requests[0].headers.get("prefer") == prefer


def test_key_sources_in_order(cli: RunCli, server: RerankServer) -> None:
    def sent_key(*args: str, env: dict[str, str]) -> str:
        document = f"document {len(server.requests)}"  # new each time: never from the cache
        result = cli(QUERY, document, *args, *api_options(server), env=env)
        assert result.exit_code == 0, result.stderr  # the server takes any key
        return server.requests[-1].headers["authorization"].removeprefix("Bearer ")

    server.api_key = None  # accept anything: we only look at what was sent
    assert sent_key(env={"RERANK_API_KEY": "gr-second-choice"}) == "gr-second-choice"
    assert sent_key(env={"GR_KEY": "gr-first", "RERANK_API_KEY": "gr-second"}) == "gr-first"
    assert sent_key("--api-key", "gr-option", env={"GR_KEY": "gr-first"}) == "gr-option"


def test_batch_size_option(api_cli: RunCli, server: RerankServer) -> None:
    docs = [f"doc {i} about France" for i in range(10)]
    assert api_cli(QUERY, *docs, "--batch-size", "3", "-j", "1").exit_code == 0
    assert server.batch_sizes == [3, 3, 3, 1]


def test_max_request_bytes_option(api_cli: RunCli, server: RerankServer) -> None:
    docs = [f"{i:03d} " + "x" * 200 for i in range(6)]
    result = api_cli(QUERY, *docs, "--max-request-bytes", "600", "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert server.batch_sizes == [2, 2, 2]
    assert all(len(r.raw) <= 600 for r in server.rerank_requests)


def test_concurrency_option(api_cli: RunCli, server: RerankServer) -> None:
    server.hold_until_in_flight(3)
    docs = [f"doc {i}" for i in range(12)]
    assert api_cli(QUERY, *docs, "--batch-size", "2", "-j", "3").exit_code == 0
    assert server.max_in_flight == 3


def test_one_keep_alive_connection(api_cli: RunCli, server: RerankServer) -> None:
    docs = [f"doc {i}" for i in range(8)]
    assert api_cli(QUERY, *docs, "--batch-size", "2", "-j", "1").exit_code == 0
    assert len(server.rerank_requests) == 4
    assert len({r.connection for r in server.rerank_requests}) == 1


# --- retried, then fine --------------------------------------------------------------------------


# The statuses issue 2 names as retried; pinned here, not read from the code under test.
SPEC_RETRY_STATUSES = [408, 409, 425, 429, 500, 502, 503, 504]


def test_retried_statuses_are_the_specs() -> None:
    assert set(SPEC_RETRY_STATUSES) == RETRY_STATUSES


@pytest.mark.parametrize("status", SPEC_RETRY_STATUSES)
def test_retried_statuses(api_cli: RunCli, server: RerankServer, status: int) -> None:
    server.add_faults(Fault.error(status, headers=FAST_RETRY))
    result = no_key(api_cli(QUERY, PARIS, BANANAS))
    assert result.exit_code == 0, result.stderr
    assert result.records()[0]["text"] == PARIS
    assert len(server.rerank_requests) == 2


@pytest.mark.parametrize(
    "hint",
    [
        Fault.error(429, headers={"retry-after-ms": "2"}),
        Fault.error(429, headers={"Retry-After": "0"}),
        Fault.error(503, retry_after_s=0.002),
    ],
    ids=["retry-after-ms", "retry-after", "body"],
)
def test_each_hint_through_the_cli(api_cli: RunCli, server: RerankServer, hint: Fault) -> None:
    server.add_faults(hint)
    result = api_cli(QUERY, PARIS, "-v")
    assert result.exit_code == 0, result.stderr
    assert "1 retry," in result.stderr


def test_too_large_batches_are_split(api_cli: RunCli, server: RerankServer) -> None:
    server.max_documents = 2
    docs = [PARIS, BANANAS, "France", "capital", "of", "Lyon", "Nice", "Rome"]
    result = api_cli(QUERY, *docs, "--batch-size", "8", "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert sorted(server.batch_sizes) == [2, 2, 2, 2, 4, 4, 8]
    expected = sorted(range(8), key=lambda i: (-score(QUERY, docs[i]), i))
    assert [r["index"] for r in result.records()] == expected


@pytest.mark.parametrize("status", [400, 413])
def test_too_large_down_to_one_document_is_exit_3(
    api_cli: RunCli, server: RerankServer, status: int
) -> None:
    server.max_documents, server.too_many_status = 0, status
    result = no_key(api_cli(QUERY, PARIS, BANANAS))
    assert result.exit_code == 3
    assert error_line(result).startswith("a single document is too large for the API")
    assert "too many documents" in error_line(result)
    assert server.batch_sizes[-1] == 1


# --- refused: exit 3 -----------------------------------------------------------------------------


def test_401(api_cli: RunCli, server: RerankServer) -> None:
    result = no_key(api_cli(QUERY, PARIS, env={"GR_KEY": "gr-not-the-right-key"}))
    assert result.exit_code == 3
    host = server.base_url.split("//")[1].split("/")[0]
    assert error_line(result) == (
        f"the API key from GR_KEY (gr-…-key) was rejected by {host}"
        " (the server said: invalid API key)"
    )
    assert len(server.rerank_requests) == 1


def test_401_names_where_the_key_came_from(
    api_cli: RunCli, cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    """Not "set GR_KEY" to someone whose GR_KEY is the rejected key: which key, from where."""
    option = no_key(api_cli(QUERY, PARIS, "--api-key", "gr-wrong-key-0000", env={"GR_KEY": ""}))
    assert "the API key from --api-key (gr-…0000) was rejected" in error_line(option)
    config = tmp_path / "config"
    setting = cli("config", "set", "api_key", "gr-wrong-key-1111")
    assert setting.exit_code == 0, setting.stderr
    from_file = api_cli(QUERY, PARIS, env={"GR_KEY": ""})
    assert f"the API key from {config / 'config.toml'} (gr-…1111) was rejected" in (
        error_line(from_file)
    )


def test_402(api_cli: RunCli, server: RerankServer) -> None:
    server.out_of_credit = True
    result = no_key(api_cli(QUERY, PARIS))
    assert result.exit_code == 3
    assert error_line(result) == f"out of credit at 127.0.0.1:{server.port}"


def test_404(api_cli: RunCli, server: RerankServer) -> None:
    result = no_key(api_cli(QUERY, PARIS, "-m", "acme/reranker-9000"))
    assert result.exit_code == 3
    assert error_line(result).startswith(
        f"model acme/reranker-9000 is not served by {server.base_url}"
    )


@pytest.mark.parametrize("status", [400, 403, 422])
def test_other_refusals_quote_the_server(
    api_cli: RunCli, server: RerankServer, status: int
) -> None:
    server.add_faults(Fault.error(status, "documents must be strings"))
    result = no_key(api_cli(QUERY, PARIS))
    assert result.exit_code == 3
    assert error_line(result) == (
        f"the API refused the request (HTTP {status}): documents must be strings"
    )
    assert len(server.rerank_requests) == 1


def test_missing_key_is_exit_3_with_the_hint(cli: RunCli, server: RerankServer) -> None:
    result = cli(QUERY, PARIS, *api_options(server))
    assert result.exit_code == 3
    message = error_line(result)
    for hint in ("GR_KEY", "rerank config set api_key", "--engine lexical"):
        assert hint in message
    assert server.requests == []


# --- failed: exit 4 ------------------------------------------------------------------------------


def test_retries_exhausted_name_the_last_failure(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(
        Fault.error(502, headers=FAST_RETRY),
        Fault.error(429, "slow down", headers=FAST_RETRY),
        Fault.error(503, "model is loading", headers=FAST_RETRY),
    )
    result = no_key(api_cli(QUERY, PARIS, "--max-retries", "2"))
    assert result.exit_code == 4
    assert error_line(result) == (
        f"{server.base_url}/rerank: failed after 3 attempts: HTTP 503 (model is loading)"
    )


def test_timeout(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault.slow(30))
    args = ("--timeout", "0.2", "--max-retries", "0", "--wait-cold", "0")
    result = no_key(api_cli(QUERY, PARIS, *args))
    assert result.exit_code == 4
    assert error_line(result).endswith("failed after 1 attempt: no answer within 0.2 s")


def test_dropped_connection(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault.dropped())
    result = no_key(api_cli(QUERY, PARIS, "--max-retries", "0"))
    assert result.exit_code == 4
    assert error_line(result).endswith(
        "failed after 1 attempt: the server closed the connection without answering"
    )


def test_truncated_answer(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault.truncated())
    result = no_key(api_cli(QUERY, PARIS, "--max-retries", "0"))
    assert result.exit_code == 4
    assert error_line(result).endswith(
        "failed after 1 attempt: the server closed the connection before the answer was complete"
    )


def test_nobody_listening(cli: RunCli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = no_key(
        cli(
            QUERY,
            PARIS,
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--max-retries",
            "0",
            env={"GR_KEY": TEST_KEY},
        )
    )
    assert result.exit_code == 4
    assert error_line(result).endswith(
        f"failed after 1 attempt: connection refused by 127.0.0.1:{port}"
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.malformed(), "invalid JSON"),
        (Fault.nan_score(), "has a non-finite score"),
        (Fault.missing_index(), "a result has no integer index"),
        (Fault.duplicate_index(), "appears twice"),
        (Fault.index_out_of_range(), "out of range for 40 documents"),
        (Fault.fewer_results(), "1 of 40 documents have no score"),
    ],
    ids=["malformed", "nan", "missing", "duplicate", "out-of-range", "fewer"],
)
def test_nonsense_is_exit_4_with_an_excerpt(
    api_cli: RunCli, server: RerankServer, fault: Fault, reason: str
) -> None:
    server.add_faults(fault)
    docs = [f"document number {i} about France" for i in range(40)]
    result = no_key(api_cli(QUERY, *docs))
    assert result.exit_code == 4
    message = error_line(result)
    assert message.startswith("unexpected response from API: ")
    assert reason in message
    excerpt = message.split(": ", 2)[2]
    assert len(excerpt) <= 201
    assert len(server.rerank_requests) == 1  # nonsense is not retried
    assert result.stdout == b""


# --- the key stays secret ------------------------------------------------------------------------


def echoes_the_key(status: int) -> Fault:
    """A server that quotes the Authorization header back in its error message."""
    return Fault.error(status, f"bad header: Bearer {TEST_KEY}", headers=FAST_RETRY)


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 3), (403, 3), (404, 3), (422, 3), (500, 4), (503, 4)],  # refused · failed after retries
)
def test_a_key_echoed_by_the_server_is_redacted(
    api_cli: RunCli, server: RerankServer, status: int, code: int
) -> None:
    server.fail_first(3, echoes_the_key(status))
    result = no_key(api_cli(QUERY, PARIS, "-v", "--max-retries", "2"))
    assert result.exit_code == code, result.stderr
    assert "bad header: Bearer gr-…" in result.stderr


def test_a_key_in_a_nonsense_body_is_redacted(api_cli: RunCli, server: RerankServer) -> None:
    server.add_faults(Fault(body=f'{{"results": "{TEST_KEY}"}}'.encode()))
    result = no_key(api_cli(QUERY, PARIS))
    assert result.exit_code == 4


def test_the_api_key_option_is_redacted_too(cli: RunCli, server: RerankServer) -> None:
    server.add_faults(echoes_the_key(400))
    result = no_key(cli(QUERY, PARIS, "--api-key", TEST_KEY, *api_options(server)))
    assert result.exit_code == 3


# --- transport security --------------------------------------------------------------------------


# TEST-NET-1 (RFC 5737): never routed. No test contacts it: the refusal happens before any
# connection.
REMOTE = "192.0.2.1:9"


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_plain_http_to_another_host_is_refused(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_network(monkeypatch)
    args = ("--base-url", f"http://{REMOTE}/v1")
    result = no_key(cli(QUERY, PARIS, *args, env={"GR_KEY": TEST_KEY}))
    assert result.exit_code == 2, result.stderr
    message = error_line(result)
    assert message.startswith(f"refusing to send the API key in clear text to {REMOTE}")


def test_allow_insecure(cli: RunCli, server: RerankServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The remote host is reached through a real forward proxy on loopback (HTTP_PROXY), which
    # maps it to the loopback server: the client speaks plain http:// to a remote URL. Should
    # the proxy be bypassed, the guard fails the lookup of remote.example and any connection
    # off loopback.
    loopback_guard.install(monkeypatch.setattr)
    with ForwardProxy(routes={"remote.example": ("127.0.0.1", server.port)}) as proxy:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.url)
        args = ("--base-url", "http://remote.example/v1")
        refused = no_key(cli(QUERY, PARIS, BANANAS, *args, env={"GR_KEY": TEST_KEY}))
        assert refused.exit_code == 2, refused.stderr
        assert error_line(refused).startswith(
            "refusing to send the API key in clear text to remote.example"
        )
        assert proxy.requests == []
        result = no_key(
            cli(QUERY, PARIS, BANANAS, *args, "--allow-insecure", env={"GR_KEY": TEST_KEY})
        )
    assert result.exit_code == 0, result.stderr
    assert result.records()[0]["text"] == PARIS
    assert proxy.request_lines == ["POST http://remote.example/v1/rerank"]
    (request,) = server.rerank_requests
    assert request.headers["host"] == "remote.example"
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"


def test_http_to_a_named_host_is_refused_without_a_request(cli: RunCli) -> None:
    args = ("--base-url", "http://rerank.example/v1")
    result = no_key(cli(QUERY, PARIS, *args, env={"GR_KEY": TEST_KEY}))
    assert result.exit_code == 2
    assert "rerank.example" in error_line(result)


# --- every exit code -----------------------------------------------------------------------------


def test_exit_1_on_empty_input(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli(QUERY, stdin=b"\n\n")
    assert result.exit_code == 1
    assert result.stderr == "rerank: no documents to rank\n"  # not an error: no "error:"
    assert server.requests == []


def test_exit_2_on_bad_input(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli(QUERY, "-F", "jsonl", stdin=b'{"text": "a"}\n{oops\n')
    assert result.exit_code == 2
    assert error_line(result).startswith("<stdin>:2: invalid JSON")
    assert server.requests == []


def test_progress_bar_only_on_a_terminal_and_for_more_than_one_batch(
    api_cli: RunCli, server: RerankServer
) -> None:
    docs = [f"document number {i}" for i in range(6)]
    shown = api_cli("q", *docs, "--batch-size", "2", stderr_tty=True)
    assert shown.exit_code == 0
    assert "6/6" in shown.stderr
    piped = api_cli("q", *docs, "--batch-size", "2")
    assert "6/6" not in piped.stderr and piped.stderr == ""
    one_batch = api_cli("q", *docs, stderr_tty=True)
    assert "6/6" not in one_batch.stderr
    assert shown.stdout == piped.stdout == one_batch.stdout
