"""RerankClient: one request made reliably, against the loopback server. Waits go through an
injected ``sleep`` that records them, so backoff is checked without a clock."""

from __future__ import annotations

import asyncio
import email.utils
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import httpx
import pytest

from rerank_cli import __version__
from rerank_cli.engines.api import client as client_module
from rerank_cli.engines.api.client import MAX_HINT_SECONDS, RETRY_STATUSES, RerankClient, retry_hint
from rerank_cli.engines.interface import Stats
from rerank_cli.errors import ApiFailed, ApiRefused, BadResponse, RequestTooLarge
from rerank_cli.settings.resolution import Settings
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer, score

QUERY = "capital of France"
DOCS = ["Bananas are yellow.", "Paris is the capital of France.", "France"]
EXPECTED = [score(QUERY, d) for d in DOCS]


class Sleeps:
    """An injectable ``sleep`` that records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def settings(server: RerankServer, **changes: object) -> Settings:
    base = Settings(base_url=server.base_url, api_key=TEST_KEY, wait_cold=0, max_retries=3)
    return replace(base, **changes)  # type: ignore[arg-type]


def call(
    config: Settings,
    texts: Sequence[str] = DOCS,
    sleep: Sleeps | None = None,
    rng: Callable[[], float] = lambda: 0.5,
    stats: Stats | None = None,
    notify: Callable[[str], None] | None = None,
) -> list[float]:
    async def go() -> list[float]:
        client = RerankClient(config, stats, sleep=sleep or Sleeps(), rng=rng, notify=notify)
        async with client:
            return await client.rerank(QUERY, texts)

    return asyncio.run(go())


# --- success -------------------------------------------------------------------------------------


def test_scores_come_back_in_document_order(server: RerankServer) -> None:
    stats = Stats()
    assert call(settings(server), stats=stats) == EXPECTED
    assert (stats.requests, stats.retries) == (1, 0)
    assert stats.bytes_sent == len(server.rerank_requests[0].raw)


def test_request_headers_and_body(server: RerankServer) -> None:
    call(settings(server, wait_cold=12))
    request = server.rerank_requests[0]
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["user-agent"] == f"rerank-cli/{__version__}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["prefer"] == "wait=12"
    assert request.prefer_wait == 12
    assert request.body == {"model": "Qwen/Qwen3-Reranker-0.6B", "query": QUERY, "documents": DOCS}


def test_no_prefer_header_when_wait_cold_is_0(server: RerankServer) -> None:
    call(settings(server, wait_cold=0))
    assert "prefer" not in server.rerank_requests[0].headers


def test_prefer_wait_rides_out_a_cold_model(server: RerankServer) -> None:
    server.make_cold(0.2)
    sleeps = Sleeps()
    assert call(settings(server, wait_cold=5), sleep=sleeps) == EXPECTED
    assert sleeps.waits == []  # held by the server, not refused and retried


@pytest.mark.parametrize("shape", ["data", "tei"])
def test_other_response_shapes(server: RerankServer, shape: str) -> None:
    server.shape = shape  # type: ignore[assignment]
    assert call(settings(server)) == EXPECTED


# --- retried statuses ----------------------------------------------------------------------------


# The statuses issue 2 names as retried; pinned here, not read from the code under test.
SPEC_RETRY_STATUSES = [408, 409, 425, 429, 500, 502, 503, 504]


def test_retried_statuses_are_the_specs() -> None:
    assert set(SPEC_RETRY_STATUSES) == RETRY_STATUSES


@pytest.mark.parametrize("status", SPEC_RETRY_STATUSES)
def test_retried_status_then_success(server: RerankServer, status: int) -> None:
    server.add_faults(Fault.error(status, "try again"))
    sleeps, stats, notes = Sleeps(), Stats(), list[str]()
    assert call(settings(server), sleep=sleeps, stats=stats, notify=notes.append) == EXPECTED
    assert (stats.requests, stats.retries) == (2, 1)
    assert sleeps.waits == [0.25]  # no hint: rng 0.5 × base 0.5 × 2**0
    assert notes == [f"HTTP {status} (try again); retrying in 0.2 s"]
    assert server.billed_documents == len(DOCS)


def test_retries_exhausted_name_the_last_failure(server: RerankServer) -> None:
    server.add_faults(Fault.error(500, "boom"), Fault.error(502), Fault.error(503, "warming up"))
    with pytest.raises(ApiFailed) as caught:
        call(settings(server, max_retries=2))
    message = str(caught.value)
    assert message == (f"{server.base_url}/rerank: failed after 3 attempts: HTTP 503 (warming up)")
    assert not isinstance(caught.value, ApiRefused)
    assert len(server.rerank_requests) == 3


def test_max_retries_0_makes_one_attempt(server: RerankServer) -> None:
    server.add_faults(Fault.error(429))
    with pytest.raises(ApiFailed, match="failed after 1 attempt: HTTP 429"):
        call(settings(server, max_retries=0))
    assert len(server.rerank_requests) == 1


# --- one client, many calls ----------------------------------------------------------------------


def test_one_client_serves_many_concurrent_calls_on_concurrency_connections(
    server: RerankServer,
) -> None:
    # A long-lived session: one client entered once, more calls at once than connections,
    # and more calls later. A queued call waits for a connection as long as it takes, even
    # when none frees within the timeout (answers may take timeout + wait_cold): not a failure.
    server.latency = 0.25
    config = settings(server, concurrency=2, timeout=0.1, wait_cold=1)
    stats = Stats()

    async def go() -> list[list[float]]:
        async with RerankClient(config, stats, sleep=Sleeps()) as client:
            first = await asyncio.gather(*(client.rerank(QUERY, DOCS) for _ in range(6)))
            await asyncio.sleep(0.05)
            return [*first, await client.rerank(QUERY, DOCS)]

    assert asyncio.run(go()) == [EXPECTED] * 7
    assert (stats.requests, stats.retries) == (7, 0)
    assert server.max_in_flight == 2
    assert server.connections_accepted == 2  # kept alive across all 7 calls
    assert len(server.connections_used) == 2


# --- hints, in priority order --------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "retry_after_s", "expected"),
    [
        ({"retry-after-ms": "1500"}, None, 1.5),
        ({"Retry-After": "2"}, None, 2.0),
        ({}, 3.5, 3.5),
        ({"retry-after-ms": "10", "Retry-After": "2"}, 3.5, 0.01),  # ms first
        ({"Retry-After": "2"}, 3.5, 2.0),  # then Retry-After
        ({"retry-after-ms": "soon", "Retry-After": "2"}, None, 2.0),  # unreadable: skipped
        ({"Retry-After": "whenever"}, 3.5, 3.5),
        ({"Retry-After": "100000"}, None, MAX_HINT_SECONDS),  # obeyed up to a cap
        ({"Retry-After": http_date(-60)}, None, 0.0),  # a date in the past: at once
    ],
    ids=[
        "ms",
        "seconds",
        "body",
        "ms-beats-all",
        "header-beats-body",
        "bad-ms",
        "bad-header",
        "capped",
        "past-date",
    ],
)
def test_server_hints_decide_the_wait(
    server: RerankServer,
    headers: dict[str, str],
    retry_after_s: float | None,
    expected: float,
) -> None:
    server.add_faults(Fault.error(429, headers=headers, retry_after_s=retry_after_s))
    sleeps = Sleeps()
    assert call(settings(server), sleep=sleeps) == EXPECTED
    assert sleeps.waits == [pytest.approx(expected)]


def test_retry_after_as_an_http_date(server: RerankServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The client's clock, fixed through retry_hint's ``now``: the wait is exact.
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:30 GMT").timestamp()
    monkeypatch.setattr(
        client_module, "retry_hint", lambda headers, body, now_=None: retry_hint(headers, body, now)
    )
    server.add_faults(Fault.error(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    sleeps = Sleeps()
    assert call(settings(server), sleep=sleeps) == EXPECTED
    assert sleeps.waits == [30.0]


def test_retry_hint_unit() -> None:
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:50 GMT").timestamp()
    assert retry_hint(headers, b"", now=now) == 10.0
    assert retry_hint(httpx.Headers({"retry-after-ms": "-5"}), b"") == 0.0
    assert retry_hint(httpx.Headers(), b'{"error": {"retry_after_s": 4}}') == 4.0
    assert retry_hint(httpx.Headers(), b"{}") is None


# --- backoff without hints -----------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_at_the_top_of_the_jitter(server: RerankServer) -> None:
    server.fail_first(9, Fault.error(500))
    sleeps = Sleeps()
    with pytest.raises(ApiFailed):
        call(settings(server, max_retries=8), sleep=sleeps, rng=lambda: 1.0)
    assert sleeps.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_is_full_jitter(server: RerankServer) -> None:
    server.fail_first(9, Fault.error(502))
    sleeps = Sleeps()
    with pytest.raises(ApiFailed):
        call(settings(server, max_retries=8), sleep=sleeps, rng=random.Random(7).random)
    bounds = [min(30.0, 0.5 * 2**attempt) for attempt in range(8)]
    assert all(0.0 <= w <= b for w, b in zip(sleeps.waits, bounds, strict=True))
    assert len(set(sleeps.waits)) == 8  # jittered, not fixed


def test_backoff_with_zero_jitter_draw_waits_nothing(server: RerankServer) -> None:
    server.fail_first(2, Fault.error(504))
    sleeps = Sleeps()
    call(settings(server), sleep=sleeps, rng=lambda: 0.0)
    assert sleeps.waits == [0.0, 0.0]


def test_backoff_base_and_cap_come_from_settings(server: RerankServer) -> None:
    server.fail_first(4, Fault.error(500))
    sleeps = Sleeps()
    call(
        settings(server, max_retries=4, backoff_base=0.001, backoff_cap=0.004),
        sleep=sleeps,
        rng=lambda: 1.0,
    )
    assert sleeps.waits == [0.001, 0.002, 0.004, 0.004]


def test_backoff_does_not_overflow_after_many_attempts() -> None:
    client = RerankClient(Settings(), rng=lambda: 1.0)
    assert client.backoff(5000) == 30.0


# --- network failures ----------------------------------------------------------------------------


def test_read_timeout_is_retried(server: RerankServer) -> None:
    server.add_faults(Fault.slow(30))
    sleeps, stats = Sleeps(), Stats()
    # The second attempt must be answered within the timeout, even on a busy machine.
    assert call(settings(server, timeout=1.0), sleep=sleeps, stats=stats) == EXPECTED
    assert (stats.requests, stats.retries, len(sleeps.waits)) == (2, 1, 1)


def test_read_timeouts_exhausted(server: RerankServer) -> None:
    server.fail_first(2, Fault.slow(30))
    with pytest.raises(ApiFailed, match=r"failed after 2 attempts: no answer within 0\.2 s$"):
        call(settings(server, timeout=0.2, max_retries=1))


def test_dropped_connection_is_retried(server: RerankServer) -> None:
    server.add_faults(Fault.dropped())
    stats = Stats()
    assert call(settings(server), stats=stats) == EXPECTED
    assert stats.retries == 1


def test_dropped_connections_exhausted(server: RerankServer) -> None:
    server.fail_first(2, Fault.dropped())
    notes: list[str] = []
    with pytest.raises(ApiFailed) as caught:
        call(settings(server, max_retries=1), notify=notes.append)
    assert str(caught.value) == (
        f"{server.base_url}/rerank: failed after 2 attempts: "
        "the server closed the connection without answering"
    )
    assert notes == ["the server closed the connection without answering; retrying in 0.2 s"]


def test_truncated_body_is_a_network_failure_and_retried(server: RerankServer) -> None:
    server.add_faults(Fault.truncated())
    stats = Stats()
    assert call(settings(server), stats=stats) == EXPECTED
    assert stats.retries == 1


def test_truncated_bodies_exhausted(server: RerankServer) -> None:
    server.fail_first(2, Fault.truncated())
    with pytest.raises(ApiFailed) as caught:
        call(settings(server, max_retries=1))
    assert str(caught.value).endswith(
        ": failed after 2 attempts: the server closed the connection before the answer was complete"
    )


def test_nobody_listening(server: RerankServer) -> None:
    url, port = server.base_url, server.port
    server.stop()
    with pytest.raises(ApiFailed) as caught:
        call(Settings(base_url=url, api_key=TEST_KEY, max_retries=0))
    assert str(caught.value) == (
        f"{url}/rerank: failed after 1 attempt: connection refused by 127.0.0.1:{port}"
    )


def failing_with(error: BaseException) -> httpx.MockTransport:
    """A transport whose every request fails as httpx's own would, with ``error`` as the cause:
    for what the OS cannot produce here without leaving the machine."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(str(error), request=request) from error

    return httpx.MockTransport(fail)


def test_dns_failure_names_the_host() -> None:
    # Injected: a real lookup would ask a resolver off this machine (.invalid never resolves).
    lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    config = Settings(base_url="https://rerank.invalid/v1", api_key=TEST_KEY, max_retries=1)
    notes: list[str] = []

    async def go() -> None:
        transport = failing_with(lookup)
        client = RerankClient(
            config, transport=transport, sleep=Sleeps(), rng=lambda: 0.5, notify=notes.append
        )
        async with client:
            await client.rerank(QUERY, DOCS)

    with pytest.raises(ApiFailed) as caught:
        asyncio.run(go())
    reason = "DNS lookup failed for rerank.invalid (Name or service not known)"
    assert str(caught.value) == (
        f"https://rerank.invalid/v1/rerank: failed after 2 attempts: {reason}"
    )
    assert notes == [f"{reason}; retrying in 0.2 s"]


# --- not retried ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "the API refused the request (HTTP 400): query is empty"),
        (
            401,
            "the API key from the settings (gr-…CRET) was rejected by {host}"
            " (the server said: query is empty)",
        ),
        (402, "out of credit at {host}"),
        (403, "the API refused the request (HTTP 403): query is empty"),
        (
            404,
            "model Qwen/Qwen3-Reranker-0.6B is not served by {base}"
            " (the server said: query is empty)",
        ),
        (422, "the API refused the request (HTTP 422): query is empty"),
    ],
)
def test_refusals_are_not_retried(server: RerankServer, status: int, message: str) -> None:
    server.add_faults(Fault.error(status, "query is empty"))
    sleeps = Sleeps()
    with pytest.raises(ApiRefused) as caught:
        call(settings(server), sleep=sleeps)
    host = server.base_url.split("//")[1].split("/")[0]
    assert str(caught.value) == message.format(host=host, base=server.base_url)
    assert caught.value.status == status
    assert not isinstance(caught.value, RequestTooLarge)
    assert (len(server.rerank_requests), sleeps.waits) == (1, [])


def test_refusal_quotes_other_error_shapes(server: RerankServer) -> None:
    server.add_faults(Fault.error(422, body=b'{"detail": [{"msg": "field required"}]}'))
    with pytest.raises(ApiRefused, match=r"\(HTTP 422\): field required$"):
        call(settings(server))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (413, None),
        (400, "too many documents: 3 > 2"),
        (422, "Request payload too large"),
        (400, "batch size exceeds the maximum of 32"),
    ],
)
def test_too_large_is_its_own_refusal(server: RerankServer, status: int, message: str) -> None:
    server.add_faults(Fault.error(status, message))
    with pytest.raises(RequestTooLarge):
        call(settings(server))


def test_unexpected_5xx_is_a_failure_not_a_refusal(server: RerankServer) -> None:
    server.add_faults(Fault.error(501, "not implemented"))
    with pytest.raises(ApiFailed, match=r"the API failed \(HTTP 501\): not implemented"):
        call(settings(server))
    assert len(server.rerank_requests) == 1


# --- nonsense answers: never retried, never accepted ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.malformed(), "invalid JSON"),
        (Fault.nan_score(), "has a non-finite score"),
        (Fault.missing_index(), "no integer index"),
        (Fault.duplicate_index(), "appears twice"),
        (Fault.index_out_of_range(), "index 3 out of range for 3 documents"),
        (Fault.fewer_results(), "1 of 3 documents have no score"),
        (Fault.rewritten(lambda rs: {"ok": True}), "no results list"),
    ],
    ids=["malformed", "nan", "missing", "duplicate", "out-of-range", "fewer", "shape"],
)
def test_bad_responses(server: RerankServer, fault: Fault, reason: str) -> None:
    server.add_faults(fault)
    with pytest.raises(BadResponse) as caught:
        call(settings(server))
    message = str(caught.value)
    assert message.startswith("unexpected response from API: ")
    assert reason in message
    assert len(message.split(": ", 2)[2]) <= 201  # ≤ 200 characters of body, and "…"
    assert len(server.rerank_requests) == 1


def test_a_body_that_cannot_be_decoded_is_nonsense(server: RerankServer) -> None:
    server.add_faults(Fault(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(BadResponse, match=r"^unexpected response from API: undecodable body"):
        call(settings(server))
    assert len(server.rerank_requests) == 1


# --- GET /models and /account ---------------------------------------------------------------------


def get_json(config: Settings, url: str, params: dict[str, str] | None = None) -> object:
    async def go() -> object:
        async with RerankClient(config, sleep=Sleeps()) as client:
            return await client.get_json(url, params=params)

    return asyncio.run(go())


def test_get_json_models_and_account(server: RerankServer) -> None:
    models = get_json(settings(server), f"{server.base_url}/models")
    assert isinstance(models, dict)
    assert models["data"][0]["id"] == "Qwen/Qwen3-Reranker-0.6B"
    account = get_json(settings(server), f"{server.url}/account", {"key": TEST_KEY})
    assert account == {"balance": 25.0, "currency": "USD"}
    assert server.requests[-1].query == {"key": [TEST_KEY]}


def test_get_json_errors_never_show_the_key_in_the_url(server: RerankServer) -> None:
    with pytest.raises(ApiRefused) as refused:
        get_json(settings(server), f"{server.url}/account", {"key": "gr-wrong-key-123456"})
    assert "was rejected by" in str(refused.value)
    with pytest.raises(ApiRefused, match=r"/nowhere not found \(HTTP 404\): no route /nowhere"):
        get_json(settings(server), f"{server.url}/nowhere", {"key": TEST_KEY})
    url, config = server.url, settings(server, max_retries=0)
    server.stop()
    with pytest.raises(ApiFailed) as failed:
        get_json(config, f"{url}/account", {"key": TEST_KEY})
    assert TEST_KEY not in str(failed.value)
    assert str(failed.value).startswith(f"{url}/account: failed after 1 attempt")
