"""ApiEngine: batching by count and bytes, concurrency on one keep-alive client, splitting a
batch the server finds too large, and scores identical however the work is cut."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.engines.api import protocol
from rerank_cli.engines.api.api_engine import ApiEngine, batches
from rerank_cli.engines.api.batching import plan_batches
from rerank_cli.engines.interface import Stats
from rerank_cli.errors import ApiRefused, RequestTooLarge
from rerank_cli.settings.resolution import Settings
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer, score

QUERY = "capital of France"


def documents(count: int) -> list[str]:
    words = ["capital", "France", "Paris", "of", "yellow", "river", "the"]
    return [
        " ".join(words[(i * k) % len(words)] for k in range(1, 4)) + f" #{i}" for i in range(count)
    ]


def settings(server: RerankServer, **changes: object) -> Settings:
    base = Settings(base_url=server.base_url, api_key=TEST_KEY, wait_cold=0)
    return replace(base, **changes)  # type: ignore[arg-type]


def run(
    config: Settings,
    texts: Sequence[str],
    stats: Stats | None = None,
    seen: list[tuple[list[int], list[float]]] | None = None,
) -> list[float]:
    async def sleep(_: float) -> None:
        pass

    engine = ApiEngine(config, stats, sleep=sleep)

    def on_scores(positions: Sequence[int], scores: Sequence[float]) -> None:
        if seen is not None:
            seen.append((list(positions), list(scores)))

    return asyncio.run(engine.score(QUERY, texts, on_scores))


# --- plan_batches (unit) -------------------------------------------------------------------------


def test_batches_close_at_the_document_count() -> None:
    assert plan_batches(["a"] * 7, 3, 10**6) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batches_close_at_the_byte_budget() -> None:
    texts = ["x" * 10] * 5  # 13 bytes each: "x…x" and a comma
    assert plan_batches(texts, 100, 30, overhead=4) == [[0, 1], [2, 3], [4]]


def test_an_oversized_text_gets_a_batch_of_its_own() -> None:
    assert plan_batches(["a", "x" * 100, "b"], 10, 20) == [[0], [1], [2]]


@given(
    st.lists(st.text(st.sampled_from('a\x01"\\é🙂\n'), max_size=12), max_size=40),
    st.integers(1, 9),
    st.integers(0, 400),
    st.sampled_from(["query", "template"]),
)
def test_slices_when_the_byte_budget_cannot_bind_are_the_planned_batches(
    texts: list[str], size: int, spare: int, mode: str
) -> None:
    shape_settings = Settings(batch_size=size, instruction_mode=mode)
    shape = protocol.Shape.of(shape_settings)
    overhead = shape.overhead(QUERY)
    # Budgets around the point where the quick path starts to apply.
    for budget in (
        overhead + spare,
        overhead + size * shape.cost_bound(max(map(len, texts), default=0)),
    ):
        chosen = replace(shape_settings, max_request_bytes=budget)
        expected = plan_batches(texts, size, budget, overhead, shape.cost)
        assert batches(chosen, QUERY, texts) == expected


def test_no_texts_no_batches() -> None:
    assert plan_batches([], 4, 100) == []


# --- batch sizes as the server sees them ---------------------------------------------------------


def test_batch_size(server: RerankServer) -> None:
    texts = documents(10)
    stats = Stats()
    assert run(settings(server, batch_size=3, concurrency=1), texts, stats) == [
        score(QUERY, t) for t in texts
    ]
    assert server.batch_sizes == [3, 3, 3, 1]
    assert (stats.batches, stats.sent, stats.requests) == (4, 10, 4)
    sent = [d for r in server.rerank_requests for d in r.documents]
    assert sent == texts  # in order, each once


def test_max_request_bytes(server: RerankServer) -> None:
    texts = ["x" * 100 + str(i % 10) for i in range(10)]
    config = settings(server, batch_size=64, concurrency=1)
    overhead = protocol.request_overhead(config.model, QUERY)
    limit = overhead + 3 * protocol.document_cost(texts[0])
    run(replace(config, max_request_bytes=limit), texts)
    assert server.batch_sizes == [3, 3, 3, 1]
    assert all(len(r.raw) <= limit for r in server.rerank_requests)


def test_whichever_limit_comes_first(server: RerankServer) -> None:
    texts = ["short"] * 3 + ["y" * 500] * 2 + ["short"] * 3
    run(settings(server, batch_size=3, concurrency=1, max_request_bytes=700), texts)
    # count, bytes (two long ones do not fit together), count, the rest
    assert [r.documents for r in server.rerank_requests] == [
        ["short"] * 3,
        ["y" * 500],
        ["y" * 500, "short", "short"],
        ["short"],
    ]


# --- concurrency and keep-alive ------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [2, 4])
def test_batches_overlap_up_to_the_concurrency(server: RerankServer, concurrency: int) -> None:
    server.hold_until_in_flight(concurrency)
    texts = documents(4 * concurrency)
    assert run(settings(server, batch_size=2, concurrency=concurrency), texts) == [
        score(QUERY, t) for t in texts
    ]
    assert server.max_in_flight == concurrency


def test_never_more_than_the_concurrency_in_flight(server: RerankServer) -> None:
    # The gate asks for one more than allowed: it only opens when its (short) timeout runs
    # out, so a client that respected the limit shows exactly the limit.
    server.hold_until_in_flight(3, timeout=0.3)
    run(settings(server, batch_size=1, concurrency=2), documents(6))
    assert server.max_in_flight == 2


def test_sequential_batches_reuse_one_connection(server: RerankServer) -> None:
    run(settings(server, batch_size=2, concurrency=1), documents(10))
    assert len(server.rerank_requests) == 5
    assert len({r.connection for r in server.rerank_requests}) == 1


def test_concurrent_batches_use_at_most_concurrency_connections(server: RerankServer) -> None:
    run(settings(server, batch_size=1, concurrency=3), documents(30))
    assert 1 <= len({r.connection for r in server.rerank_requests}) <= 3


# --- splitting on "too large" --------------------------------------------------------------------


@pytest.mark.parametrize("status", [413, 400, 422])
def test_too_large_batches_are_split_in_halves(server: RerankServer, status: int) -> None:
    server.max_documents, server.too_many_status = 2, status
    texts = documents(8)
    stats = Stats()
    assert run(settings(server, batch_size=8, concurrency=1), texts, stats) == [
        score(QUERY, t) for t in texts
    ]
    assert Counter(server.batch_sizes) == {8: 1, 4: 2, 2: 4}
    assert server.billed_documents == 8
    assert (stats.batches, stats.sent) == (4, 8)


def test_split_of_an_odd_batch(server: RerankServer) -> None:
    server.max_documents = 1
    run(settings(server, batch_size=3, concurrency=1), documents(3))
    assert server.batch_sizes == [3, 1, 2, 1, 1]


def test_a_single_document_too_large_is_a_refusal(server: RerankServer) -> None:
    server.max_documents = 0
    with pytest.raises(ApiRefused, match="a single document is too large for the API") as caught:
        run(settings(server, batch_size=4, concurrency=1), documents(4))
    assert not isinstance(caught.value, RequestTooLarge)
    assert caught.value.status == 413
    assert server.batch_sizes == [4, 2, 1]
    assert server.billed_documents == 0


def test_a_bad_request_that_is_not_about_size_is_not_split(server: RerankServer) -> None:
    server.add_faults(Fault.error(400, "query must not be empty"))
    with pytest.raises(ApiRefused, match="query must not be empty"):
        run(settings(server, batch_size=4, concurrency=1), documents(4))
    assert server.batch_sizes == [4]


# --- results -------------------------------------------------------------------------------------


def test_each_batch_is_reported_as_it_lands(server: RerankServer) -> None:
    texts = documents(7)
    seen: list[tuple[list[int], list[float]]] = []
    scores = run(settings(server, batch_size=3, concurrency=2), texts, seen=seen)
    assert sorted(p for positions, _ in seen for p in positions) == list(range(7))
    for positions, batch_scores in seen:
        assert [scores[p] for p in positions] == batch_scores


@pytest.mark.parametrize(("batch_size", "concurrency"), [(1, 1), (2, 3), (5, 8), (64, 4)])
def test_scores_do_not_depend_on_the_cut(
    server: RerankServer, batch_size: int, concurrency: int
) -> None:
    texts = documents(23)
    config = settings(server, batch_size=batch_size, concurrency=concurrency)
    assert run(config, texts) == [score(QUERY, t) for t in texts]


def test_a_failure_in_one_batch_stops_the_others(server: RerankServer) -> None:
    server.add_faults(Fault.error(401))
    with pytest.raises(ApiRefused, match=r"API key from the settings .* was rejected"):
        run(settings(server, batch_size=1, concurrency=2), documents(20))
    assert len(server.rerank_requests) < 20
