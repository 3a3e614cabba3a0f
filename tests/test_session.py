"""The Python API: ``Reranker`` (sync and async) and ``rerank``, against the loopback server.

A session keeps one connection pool, one request limit and one event loop for its whole life;
its rankings are the CLI's."""

from __future__ import annotations

import asyncio
import re
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


# --- sharing one session between tasks and threads ------------------------------------------------

MANY = [f"note {n} about {topic}" for n in range(400) for topic in ("capitals",)]


@pytest.mark.usefixtures("user_env")
def test_concurrent_aranks_with_the_cache_on_store_and_answer_alike(
    server: RerankServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Thirty queries at once on one cache connection: every score stored once, a second round
    answered from the cache, the same rankings, and not a word about the cache on stderr."""
    queries = [f"capitals {n}" for n in range(30)]

    async def round_of(ranker: Reranker) -> list[list[tuple[int, float]]]:
        results = await asyncio.gather(*(ranker.arank(q, MANY, top_k=5) for q in queries))
        return [ranking(r) for r in results]

    async def main() -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
        async with Reranker(base_url=server.base_url, batch_size=50, concurrency=4) as ranker:
            first = await round_of(ranker)
            second = await round_of(ranker)
            return first, second

    first, second = asyncio.run(main())
    assert first == second
    assert server.billed_documents == len(queries) * len(MANY)  # the second round was cached
    assert "cache" not in capsys.readouterr().err


@pytest.mark.usefixtures("user_env")
def test_threads_sharing_a_fresh_session_share_one_loop(server: RerankServer) -> None:
    import threading

    ranker = Reranker(base_url=server.base_url, no_cache=True)
    start = threading.Barrier(8)
    results: list[list[tuple[int, float]]] = []

    def work() -> None:
        start.wait()
        results.append(ranking(ranker.rank("capital", DOCUMENTS)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loops = [t for t in threading.enumerate() if t.name == "rerank-session"]
    ranker.close()
    assert len(loops) == 1
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert not [t for t in threading.enumerate() if t.name == "rerank-session"]


def request_out(server: RerankServer, seconds: float = 5.0) -> None:
    """Wait until a request has reached the server (and is being held there)."""
    import time

    deadline = time.monotonic() + seconds
    while server.in_flight < 1:
        assert time.monotonic() < deadline, "no request reached the server"
        time.sleep(0.005)


@pytest.mark.usefixtures("user_env")
def test_closing_a_session_ends_the_calls_still_running(server: RerankServer) -> None:
    import threading

    server.add_faults(Fault.slow(5.0))
    ranker = Reranker(base_url=server.base_url, no_cache=True, max_retries=0)
    raised: list[BaseException] = []

    def call() -> None:
        try:
            ranker.rank("capital", DOCUMENTS)
        except BaseException as error:  # what the call ends with
            raised.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    request_out(server)
    ranker.close()
    thread.join(timeout=3)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], UsageError)
    assert "closed" in str(raised[0])


@pytest.mark.usefixtures("user_env")
def test_leaving_async_with_ends_an_arank_still_running(server: RerankServer) -> None:
    server.add_faults(Fault.slow(5.0))

    async def main() -> BaseException | None:
        async with Reranker(base_url=server.base_url, no_cache=True, max_retries=0) as ranker:
            task = asyncio.ensure_future(ranker.arank("capital", DOCUMENTS))
            await asyncio.to_thread(request_out, server)
        try:
            await asyncio.wait_for(task, 3)
        except UsageError as error:
            return error
        return None

    error = asyncio.run(main())
    assert isinstance(error, UsageError) and "closed" in str(error)


@pytest.mark.usefixtures("user_env")
def test_documents_are_read_on_the_callers_thread(server: RerankServer) -> None:
    """A database cursor cannot leave the thread that made it: the session reads it there."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE docs (text TEXT)")
    db.executemany("INSERT INTO docs VALUES (?)", [(d,) for d in DOCUMENTS])

    def rows() -> Iterator[str]:
        return (text for (text,) in db.execute("SELECT text FROM docs ORDER BY rowid"))

    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        expected = ranking(ranker.rank("capital", DOCUMENTS))
        assert ranking(ranker.rank("capital", rows())) == expected
        assert ranking(asyncio.run(ranker.arank("capital", rows()))) == expected


@pytest.mark.usefixtures("user_env")
def test_a_later_call_leaves_earlier_results_alone(server: RerankServer) -> None:
    documents = [Document(text=t, raw=b"") for t in DOCUMENTS]
    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        first = ranker.rank("Paris", documents)
        before = [(r.document.index, r.document.text) for r in first]
        ranker.rank("Paris", documents[2:])
    assert [(r.document.index, r.document.text) for r in first] == before
    assert [d.index for d in documents] == [-1] * len(documents)  # the caller's, untouched


@pytest.mark.usefixtures("user_env")
def test_an_error_from_the_api_never_carries_the_key(server: RerankServer) -> None:
    server.add_faults(Fault.error(400, f"invalid key {TEST_KEY} given"))
    with pytest.raises(RerankError) as raised, Reranker(base_url=server.base_url) as ranker:
        ranker.rank("capital", DOCUMENTS, top_k=1)
    assert "invalid key" in str(raised.value)
    assert TEST_KEY not in str(raised.value)
    assert TEST_KEY not in repr(raised.value.args)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": None}, "query must be a string, got None"),
        ({"documents": "Paris"}, "documents must be a list"),
        ({"top_k": 0}, "top_k must be a whole number ≥ 1, got 0"),
        ({"top_k": "2"}, "top_k must be a whole number ≥ 1, got '2'"),
        ({"min_score": "x"}, "min_score must be a finite number, got 'x'"),
        ({"min_score": float("nan")}, "min_score must be a finite number, got nan"),
        ({"documents": [3]}, "document 0 is a number (expected a string, a dict or a Document)"),
        ({"documents": [None]}, "document 0 is None (expected a string, a dict or a Document)"),
        ({"documents": [{"text": None}]}, "document 0: text is None (expected a string)"),
        ({"documents": [{"text": {}}]}, "document 0: text is a dict (expected a string)"),
    ],
)
@pytest.mark.usefixtures("user_env")
def test_bad_arguments_are_usage_errors_and_send_nothing(
    server: RerankServer, arguments: dict[str, object], message: str
) -> None:
    call: dict[str, object] = {"query": "capital", "documents": DOCUMENTS, **arguments}
    with Reranker(base_url=server.base_url, no_cache=True) as ranker:
        with pytest.raises(UsageError, match=re.escape(message)):
            ranker.rank(**call)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=re.escape(message)):
            asyncio.run(ranker.arank(**call))  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_a_blank_query_is_a_usage_error_and_sends_nothing(
    api_cli: RunCli, server: RerankServer, query: str
) -> None:
    for args in ([query, "a", "b"], ["files", query, "."]):
        done = api_cli(*args, stdin=b"never read\n")
        assert done.exit_code == 2, done.stderr
        assert "the query is blank" in done.stderr
        without_key = api_cli(*args, env={"GR_KEY": ""})  # the usage error comes first
        assert without_key.exit_code == 2, without_key.stderr
    assert server.requests == []
