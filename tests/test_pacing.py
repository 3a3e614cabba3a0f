"""Rate limits: the pacing core's invariants (hypothesis), the providers' headers, and the
client against the loopback server in its rate-limit mode (token bucket, real 429s)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli import Reranker
from rerank_cli.engines.api.client import RerankClient
from rerank_cli.engines.api.pacing import Window, read_rate_limits, reset_seconds
from rerank_cli.settings.resolution import Settings
from tests.conftest import TEST_KEY, RunCli
from tests.server import Fault, RerankServer, score

# --- the core: the limit stays in [1, j], goes down on 429 and up on success ---------------------

Event = tuple[str, int]  # ("start" | "ok" | "429" | "other", which started request)
events = st.lists(
    st.tuples(st.sampled_from(["start", "ok", "429", "other"]), st.integers(0, 1_000)),
    max_size=200,
)


def replay(ceiling: int, script: list[Event]) -> Window:
    """Run a script against a window, checking the invariants after every step."""
    window = Window(ceiling)
    out: list[int] = []  # tickets in flight
    for kind, pick in script:
        before, cut_at = window.limit, window.cut_at
        if kind == "start" or not out:
            out.append(window.start())
        else:
            ticket = out.pop(pick % len(out))
            if kind == "ok":
                window.succeeded(ticket)
                assert window.limit > before or before == ceiling
            elif kind == "429":
                window.throttled(ticket)
                if ticket >= cut_at:  # sent after the last cut: cuts again
                    assert window.limit == max(1.0, before * window.decrease)
                    assert window.limit < before or before == 1
                else:  # answered late for a round already cut: changes nothing
                    assert window.limit == before
        assert 1.0 <= window.limit <= ceiling
        assert 1 <= window.allowed <= ceiling
    return window


@given(st.integers(1, 64), events)
def test_the_limit_stays_between_1_and_j(ceiling: int, script: list[Event]) -> None:
    replay(ceiling, script)


@given(st.integers(2, 64), st.integers(1, 20))
def test_one_round_of_429s_cuts_once(ceiling: int, count: int) -> None:
    window = Window(ceiling)
    tickets = [window.start() for _ in range(count)]
    for ticket in tickets:  # every request of the round answered 429
        window.throttled(ticket)
    assert window.limit == max(1.0, ceiling * window.decrease)


@given(st.integers(1, 64))
def test_successes_climb_back_to_j_and_no_further(ceiling: int) -> None:
    window = Window(ceiling)
    window.throttled(window.start())
    for _ in range(ceiling * ceiling + 1):
        window.succeeded(window.start())
    assert window.allowed == ceiling


@given(
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e3)), min_size=1, max_size=20),
    st.floats(0, 2e6),
)
def test_a_pause_lasts_until_its_longest_end(pauses: list[tuple[float, float]], at: float) -> None:
    window = Window(4)
    for now, seconds in pauses:
        window.pause(now, seconds)
    end = max(now + seconds for now, seconds in pauses)
    assert window.waiting(at) == pytest.approx(max(0.0, end - at))
    window.served(window.pause_id)
    assert window.waiting(at) == 0.0


@given(st.integers(0, 50), st.integers(0, 60))
def test_a_count_of_remaining_requests_is_spent_then_waited_out(left: int, more: int) -> None:
    window = Window(8)
    counted = window.start()
    window.counted(counted, left, reset_at=100.0)
    for _ in range(more):
        window.start()
    # The last of the ``left`` requests may go; after it, nothing until the reset.
    assert window.waiting(0.0) == (100.0 if more >= left else 0.0)


def test_an_older_count_does_not_replace_a_newer_one() -> None:
    window = Window(8)
    old, new = window.start(), window.start()
    window.counted(new, 5, reset_at=100.0)
    window.counted(old, 0, reset_at=100.0)  # answered late: it knew less
    assert window.waiting(0.0) == 0.0


# --- the providers' headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1.5", 1.5),
        ("20ms", 0.02),
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("2m", 120.0),
        (str(1_000_000_000 + 30), 30.0),  # a Unix time: seconds from "now" below
        (str((1_000_000_000 + 30) * 1000), 30.0),  # … in milliseconds
        (email.utils.formatdate(1_000_000_000 + 30, usegmt=True), 30.0),  # an HTTP date
        ("2001-09-09T01:47:10Z", 30.0),  # ISO 8601
        ("soon", None),
        ("", None),
        ("nan", None),
    ],
)
def test_reset_formats(value: str, seconds: float | None) -> None:
    found = reset_seconds(value, now=1_000_000_000.0)
    assert found == (None if seconds is None else pytest.approx(seconds))


@given(
    st.integers(0, 99),
    st.integers(0, 59),
    st.floats(0, 59.999, allow_nan=False).map(lambda x: round(x, 3)),
)
def test_durations_read_back(hours: int, minutes: int, seconds: float) -> None:
    text = f"{hours}h{minutes}m{seconds}s"
    assert reset_seconds(text) == pytest.approx(hours * 3600 + minutes * 60 + seconds)


def test_relative_resets_count_from_the_send_absolute_ones_do_not() -> None:
    assert reset_seconds("2s", elapsed=0.5) == pytest.approx(1.5)
    assert reset_seconds("3", elapsed=5.0) == 0.0
    assert reset_seconds(str(1_000_000_000 + 30), now=1_000_000_000.0, elapsed=5) == 30.0


@pytest.mark.parametrize(
    ("headers", "remaining", "reset", "exhausted"),
    [
        ({}, None, None, None),
        ({"x-ratelimit-remaining-requests": "7", "x-ratelimit-reset-requests": "2s"}, 7, 2, None),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}, 0, 3, 3),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "4"}, 0, 4, 4),  # IETF drafts, Cohere
        # Tokens run out before requests: no count of requests, but a wait.
        (
            {
                "x-ratelimit-remaining-requests": "9",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1m0s",
            },
            9,
            1,
            60,
        ),
        ({"x-ratelimit-remaining": "0"}, 0, None, None),  # no reset: nothing to wait for
        ({"x-ratelimit-remaining": "many", "x-ratelimit-reset": "3"}, None, None, None),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "999"}, 0, 120, 120),  # capped
    ],
)
def test_rate_limit_headers(
    headers: dict[str, str], remaining: float | None, reset: float | None, exhausted: float | None
) -> None:
    limits = read_rate_limits(headers, cap=120.0)
    assert (limits.remaining, limits.reset, limits.exhausted) == (remaining, reset, exhausted)


# --- against the rate-limited server -------------------------------------------------------------

QUERY = "rate limits of the api"
RATE = 30.0
REQUESTS = 80


def documents() -> list[str]:
    topics = ["rate", "limits", "api", "retries", "bananas"]
    return [f"note {i} on {topics[i % 5]} and {topics[i * 7 % 5]}" for i in range(REQUESTS)]


def test_a_rate_limited_run_is_complete_and_mostly_not_refused(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    """-j 16 against 30 requests/s at 100 ms (3 in flight would do): every document ranked
    right, and few 429s (~1 %). Without adaptation (the limit pinned at -j, no pauses) about 75 %
    of the requests are refused: each retry, told to come back when the next request is
    allowed, races all the others for it."""
    server.rate_limit, server.latency = RATE, 0.1  # a bucket of one second's worth
    texts = documents()
    (tmp_path / "docs.txt").write_text("\n".join(texts) + "\n")
    args = ["-i", str(tmp_path / "docs.txt"), "--batch-size", "1", "-j", "16", "-o", "jsonl"]
    result = api_cli(QUERY, *args, "--max-retries", "30", "--no-cache")
    assert result.exit_code == 0, result.stderr
    ranked = [record["text"] for record in result.records()]
    assert ranked == sorted(texts, key=lambda text: -score(QUERY, text))
    assert server.billed_documents == REQUESTS
    assert server.throttled < 0.15 * len(server.rerank_requests)


def test_without_rate_limit_headers_the_limit_adapts_to_429s(server: RerankServer) -> None:
    """The same server with no x-ratelimit-* headers, only its 429s' Retry-After: the limit on
    requests in flight alone keeps the 429s down (~15 %; pinned at -j: 60-75 %)."""
    server.rate_limit, server.latency, server.rate_limit_headers = RATE, 0.1, False
    texts = documents()
    with Reranker(
        base_url=server.base_url,
        api_key=TEST_KEY,
        no_cache=True,
        batch_size=1,
        concurrency=16,
        max_retries=30,
    ) as session:
        ranked = [result.document.text for result in session.rank(QUERY, texts)]
    assert ranked == sorted(texts, key=lambda text: -score(QUERY, text))
    assert server.throttled < 0.35 * len(server.rerank_requests)


def test_a_429_pauses_the_whole_session(server: RerankServer) -> None:
    """One request's Retry-After holds every request of the session, not just its retry: a
    request that could go at once (its worker's first answer came back meanwhile) waits too."""
    server.add_faults(Fault.error(429, headers={"retry-after-ms": "1500"}), Fault.slow(1.0))
    texts = ["one", "two", "three", "four"]
    with Reranker(
        base_url=server.base_url, api_key=TEST_KEY, no_cache=True, batch_size=1, concurrency=2
    ) as session:
        session.rank(QUERY, texts)
    requests = server.rerank_requests
    refused = requests[0].received
    later = [r.received - refused for r in requests[2:]]
    assert len(later) == 3  # the retry and the last two documents
    assert min(later) >= 1.5 - 0.01


def test_no_request_before_an_exhausted_limit_resets(server: RerankServer) -> None:
    """remaining 0 with a reset time (here a Unix time): nothing is sent before it."""
    reset_wall = time.time() + 1.0
    reset_monotonic = time.monotonic() + 1.0
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{reset_wall:.3f}"}
    server.add_faults(Fault(headers=headers))
    with Reranker(
        base_url=server.base_url, api_key=TEST_KEY, no_cache=True, batch_size=1, concurrency=1
    ) as session:
        results = session.rank(QUERY, ["one", "two", "three"])
    assert len(results) == 3
    first, *rest = server.rerank_requests
    assert first.received < reset_monotonic
    assert min(r.received for r in rest) >= reset_monotonic - 0.01


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_remaining_requests_counted_down_then_reset_waited(server: RerankServer) -> None:
    """x-ratelimit-remaining-requests: 2 (reset 30 s): two more requests go, then the session
    waits out the reset (OpenAI's duration format) before the next."""
    limits = {"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "30s"}
    server.add_faults(Fault(headers=limits))
    sleeps, notes = Sleeps(), list[str]()
    settings = Settings(base_url=server.base_url, api_key=TEST_KEY, wait_cold=0, concurrency=1)

    async def go() -> None:
        async with RerankClient(replace(settings), sleep=sleeps, notify=notes.append) as client:
            for text in ["a", "b", "c"]:
                await client.rerank(QUERY, [text])
            assert sleeps.waits == []  # the two the count allowed
            await client.rerank(QUERY, ["d"])

    asyncio.run(go())
    assert sleeps.waits == [pytest.approx(30.0, abs=1.0)]
    assert len(server.rerank_requests) == 4
    # Said once, when the count ran out (a terminal left blank for 30 s looks like a hang).
    assert notes == [f"the rate limit of {settings.host} is used up; waiting 30 s"]


def test_the_test_server_limits_as_it_says(server: RerankServer) -> None:
    """The server's own mode, checked on its own: over the bucket → 429 with the headers."""
    import httpx

    server.rate_limit, server.rate_burst, server.api_key = 1.0, 2, None
    body = {"model": "Qwen/Qwen3-Reranker-0.6B", "query": "q", "documents": ["d"]}
    with httpx.Client() as http:
        answers = [http.post(f"{server.base_url}/rerank", json=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["x-ratelimit-remaining-requests"] == "0"
    refused = answers[2]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < float(refused.json()["error"]["retry_after_s"]) <= 1.0
    assert int(refused.headers["retry-after"]) == 1
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert server.throttled == 1
