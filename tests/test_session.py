"""The Python API: ``Reranker`` (sync and async) and ``rerank``, against the loopback server.

A session keeps one connection pool, one request limit and one event loop for its whole life;
its rankings are the CLI's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from rerank_cli import Reranker, rerank
from rerank_cli.core.documents import Document, Result
from rerank_cli.errors import RerankError, UsageError
from rerank_cli.providers.instructions import TASKS
from tests.conftest import TEST_KEY, RunCli
from tests.server import Fault, RerankServer

DOCUMENTS = [
    "Paris is the capital of France.",
    "Bananas are yellow.",
    "The Eiffel Tower stands in Paris.",
    "Berlin is the capital of Germany.",
    "France borders Spain and Italy.",
]
QUERIES = [f"{topic} question {n}" for n in range(10) for topic in ("capital", "fruit", "tower")]


@pytest.fixture
def user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """What a Python user has: variables in os.environ, no config file of theirs."""
    monkeypatch.setenv("RERANK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("RERANK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GR_KEY", TEST_KEY)
    yield


def ranking(results: list[Result]) -> list[tuple[int, float]]:
    return [(r.document.index, r.score) for r in results]


@pytest.mark.usefixtures("user_env")
def test_one_session_many_queries_uses_at_most_j_connections(server: RerankServer) -> None:
    with Reranker(base_url=server.base_url, concurrency=2, batch_size=2, no_cache=True) as ranker:
        for query in QUERIES:
            assert len(ranker.rank(query, DOCUMENTS)) == len(DOCUMENTS)
        assert ranker.stats.requests == len(QUERIES) * 3  # 5 documents in batches of 2
    assert len(server.rerank_requests) == len(QUERIES) * 3
    assert 1 <= len(server.connections_used) <= 2  # keep-alive across queries


@pytest.mark.usefixtures("user_env")
def test_session_rankings_equal_the_cli(
    server: RerankServer, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        ours = {query: ranking(ranker.rank(query, DOCUMENTS)) for query in QUERIES[:6]}
    for query in QUERIES[:6]:
        done = cli(
            query,
            *DOCUMENTS,
            "--base-url",
            server.base_url,
            "--no-cache",
            "-o",
            "jsonl",
            env={"GR_KEY": TEST_KEY},
        )
        assert done.exit_code == 0, done.stderr
        assert [(r["index"], r["score"]) for r in done.records()] == ours[query]


@pytest.mark.usefixtures("user_env")
def test_concurrent_aranks_share_the_limit_and_rank_as_rank_does(server: RerankServer) -> None:
    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        expected = [ranking(ranker.rank(query, DOCUMENTS)) for query in QUERIES]
    before = len(server.connections_used)

    async def main() -> list[list[Result]]:
        async with Reranker(base_url=server.base_url, no_cache=True, concurrency=3) as ranker:
            return await asyncio.gather(*(ranker.arank(q, DOCUMENTS) for q in QUERIES))

    results = asyncio.run(main())
    assert [ranking(r) for r in results] == expected
    assert len(server.connections_used) - before <= 3
    assert server.max_in_flight <= 3  # one limit for all thirty queries


@pytest.mark.usefixtures("user_env")
def test_arank_inside_a_running_loop_leaves_it_free(server: RerankServer) -> None:
    """The caller's loop keeps turning while a query is out (Jupyter, FastAPI)."""
    server.add_faults(*[])  # a plain server; the ticks below show the loop is not blocked
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def main() -> list[Result]:
        tick = asyncio.ensure_future(ticker())
        try:
            with Reranker(base_url=server.base_url, no_cache=True) as ranker:
                server.make_cold(0.2)  # the first request is held for 0.2 s
                return await ranker.arank("capital", DOCUMENTS, top_k=1)
        finally:
            tick.cancel()

    (best,) = asyncio.run(main())
    assert best.document.text == "Paris is the capital of France."
    assert ticks > 20


@pytest.mark.usefixtures("user_env")
def test_the_python_api_takes_cli_option_names(server: RerankServer, tmp_path: Path) -> None:
    results = rerank(
        "capital of France",
        DOCUMENTS,
        base_url=server.base_url,
        no_cache=True,
        batch_size=2,
        top_k=2,
    )
    assert results[0].document.text == "Paris is the capital of France."
    assert len(results) == 2
    assert sorted(server.batch_sizes) == [1, 2, 2]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.usefixtures("user_env")
def test_an_unknown_setting_names_the_closest(server: RerankServer) -> None:
    with pytest.raises(UsageError, match="no_cache"):
        Reranker(base_url=server.base_url, no_cach=True)


@pytest.mark.usefixtures("user_env")
def test_documents_may_be_dicts_or_documents_and_instructions_apply_per_call(
    server: RerankServer,
) -> None:
    tickets = [{"body": {"text": text}, "id": n} for n, text in enumerate(DOCUMENTS)]
    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        by_dict = ranker.rank("capital", tickets, field="body.text")
        by_doc = ranker.rank("capital", [Document(text=t, raw=b"") for t in DOCUMENTS])
        ranker.rank("capital", DOCUMENTS, task="code")
        ranker.rank("capital", DOCUMENTS, instruction="Find capitals")
        with pytest.raises(UsageError, match="unknown task 'cod'"):
            ranker.rank("capital", DOCUMENTS, task="cod")
    assert ranking(by_dict) == ranking(by_doc)
    assert server.rerank_requests[-2].body["query"].startswith(f"<Instruct>: {TASKS['code']}")
    assert by_dict[0].document.record == {"body": {"text": DOCUMENTS[0]}, "id": 0}
    # gigarouter takes the instruction in the query
    assert server.rerank_requests[-1].body["query"].startswith("<Instruct>: Find capitals")
    assert "<Instruct>" not in server.rerank_requests[0].body["query"]


@pytest.mark.usefixtures("user_env")
def test_a_password_in_the_base_url_never_shows(server: RerankServer) -> None:
    url = server.base_url.replace("http://", "http://user:pa55w0rd-secret@")
    server.fail_first(10, Fault.error(401, "bad key for pa55w0rd-secret"))
    with pytest.raises(RerankError) as raised, Reranker(base_url=url, no_cache=True) as ranker:
        ranker.rank("q", DOCUMENTS)
    assert "pa55w0rd-secret" not in str(raised.value)


@pytest.mark.usefixtures("user_env")
def test_estimate_is_what_dry_run_reports(server: RerankServer) -> None:
    with Reranker(base_url=server.base_url, batch_size=2) as ranker:
        before = ranker.estimate("capital", DOCUMENTS + DOCUMENTS[:1])
        ranker.rank("capital", DOCUMENTS[:3])
        after = ranker.estimate("capital", DOCUMENTS)
    assert (before.documents, before.unique, before.cached, before.to_send) == (6, 5, 0, 5)
    assert before.requests == 3
    assert (after.cached, after.to_send, after.requests) == (3, 2, 1)
    assert server.billed_documents == 3  # estimates send nothing


@pytest.mark.usefixtures("user_env")
def test_a_closed_session_says_so(server: RerankServer) -> None:
    ranker = Reranker(base_url=server.base_url)
    ranker.close()
    ranker.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        ranker.rank("q", DOCUMENTS)
    with pytest.raises(UsageError, match="closed"):
        asyncio.run(ranker.arank("q", DOCUMENTS))


def test_verbose_price_lookup_reuses_the_run_connection(
    api_cli: RunCli, server: RerankServer
) -> None:
    """-v asks for the price through the session's client: no second client, no second loop."""
    done = api_cli("capital", *DOCUMENTS, "-v", "-j", "1", "--no-cache")
    assert done.exit_code == 0, done.stderr
    assert [r.path for r in server.requests] == ["/v1/rerank", "/v1/models"]
    assert len(server.connections_used) == 1
    assert orjson.loads(done.stdout.splitlines()[0])["rank"] == 1
