"""The rank job streams its input: documents are planned as they arrive and the first request
leaves as soon as one batch is full. The streamed path must write exactly what the read-all
path writes (a budget forces that one: it needs the whole count before paying)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.core import documents as documents_module
from rerank_cli.core.documents import Chunk, Document, DocumentStore, Source
from rerank_cli.engines.api.batching import Batcher, plan_batches
from rerank_cli.engines.api.protocol import document_cost
from tests.conftest import TEST_KEY, RunCli, api_options
from tests.server import RerankServer

RERANK = Path(sys.executable).with_name("rerank")

line = st.one_of(
    st.sampled_from(["alpha", "beta", "gamma", "alpha", "", "  ", "beta\r", "é ü", "x" * 40]),
    st.text(alphabet="abc \t", min_size=1, max_size=6),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(line, min_size=1, max_size=60),
    ends_with_newline=st.booleans(),
    batch_size=st.integers(1, 7),
    concurrency=st.integers(1, 4),
    output=st.sampled_from(["jsonl", "plain", "tsv", "json"]),
    top_k=st.one_of(st.none(), st.integers(1, 5)),
    cache=st.sampled_from(["on", "off"]),
    hold=st.sampled_from([0, 3, 1 << 17]),
)
def test_the_streamed_run_writes_what_the_read_all_run_writes(
    cli: RunCli,
    server: RerankServer,
    lines: list[str],
    ends_with_newline: bool,
    batch_size: int,
    concurrency: int,
    output: str,
    top_k: int | None,
    cache: str,
    hold: int,
) -> None:
    """``hold``: documents held as they are before the store holds them compactly."""
    data = "\n".join(lines).encode() + (b"\n" if ends_with_newline else b"")
    common = [
        "how",
        *api_options(server),
        "--batch-size",
        str(batch_size),
        "-j",
        str(concurrency),
        "-o",
        output,
        *(["-k", str(top_k)] if top_k else []),
    ]
    env = {"GR_KEY": TEST_KEY, "RERANK_CACHE": cache}
    held, documents_module.HOLD = documents_module.HOLD, hold
    try:
        streamed = cli(*common, stdin=data, env=env)
    finally:
        documents_module.HOLD = held
    read_all = cli(*common, "--max-docs", "1000000", stdin=data, env=env)  # a budget: read all
    assert (streamed.exit_code, streamed.stdout) == (read_all.exit_code, read_all.stdout)


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(max_size=12), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=8),
    batch_size=st.integers(1, 6),
    max_bytes=st.integers(1, 120),
    bound=st.booleans(),
)
def test_batches_cut_as_texts_arrive_are_the_planned_ones(
    texts: list[str], cuts: list[int], batch_size: int, max_bytes: int, bound: bool
) -> None:
    planned = plan_batches(texts, batch_size, max_bytes, 10, document_cost)
    cutter = Batcher(
        batch_size,
        max_bytes,
        10,
        document_cost,
        (lambda chars: document_cost("") + 6 * chars) if bound else None,
    )
    online: list[list[int]] = []
    start = 0
    for end in sorted({min(c, len(texts)) for c in cuts} | {len(texts)}):
        online += map(list, cutter.add(texts, start, end))  # a batch may be a range
        start = end
    online += map(list, cutter.close())
    assert online == planned


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=6),
            st.sampled_from(["compact", "crlf", "record", "no source", "separator"]),
            st.sampled_from(["a.txt", "b.txt"]),
        ),
        max_size=30,
    ),
    st.sampled_from([0, 2, 1 << 17]),
)
def test_the_store_gives_back_the_documents_it_was_given(
    specs: list[tuple[str, str, str]], hold: int
) -> None:
    given_documents = []
    for number, (text, kind, name) in enumerate(specs, 1):
        raw = (text + ("\r\n" if kind == "crlf" else "\n")).encode()
        document = Document(
            text,
            raw,
            None if kind == "no source" else Source(name, number),
            record={"text": text} if kind == "record" else None,
            separator=b"--\n" if kind == "separator" else b"",
        )
        given_documents.append(document)
    expected = [
        Document(d.text, d.raw, d.source, d.record, separator=d.separator, index=i)
        for i, d in enumerate(given_documents)
    ]
    held, documents_module.HOLD = documents_module.HOLD, hold
    try:
        store = DocumentStore()
        for document in given_documents:
            store.append(document)
        assert list(store) == expected
        assert store[:] == expected
        assert len(store) == len(expected)
    finally:
        documents_module.HOLD = held


def process_environment(tmp_path: Path) -> dict[str, str]:
    """A rerank process's environment: the test key, config and cache of its own, no proxy
    for the loopback server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RERANK_")}
    env.update(
        GR_KEY=TEST_KEY,
        RERANK_CONFIG_DIR=str(tmp_path / "config"),
        RERANK_CACHE_DIR=str(tmp_path / "cache"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def test_the_first_request_leaves_before_stdin_closes(tmp_path: Path) -> None:
    """A subprocess whose stdin stays open: the server sees a request before it is closed."""
    if not RERANK.exists():
        pytest.skip("the rerank script is not installed beside this interpreter")
    lines = b"".join(b"note %d: how streaming works, line by line\n" % i for i in range(300))
    assert len(lines) > 8192  # detection and the binary check read the first 8 KB first
    env = process_environment(tmp_path)
    with RerankServer(api_key=TEST_KEY) as server:
        process = subprocess.Popen(
            [str(RERANK), "how", "--base-url", server.base_url, "--batch-size", "16"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(lines)
            process.stdin.flush()
            seen = threading.Event()

            def watch() -> None:
                while not seen.is_set() and process.poll() is None:
                    if server.rerank_requests:
                        seen.set()
                        return
                    threading.Event().wait(0.02)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            watcher.join(60)  # a bound on the wait, not a timing: the test is whether it came
            sent_before_close = bool(server.rerank_requests)
            assert process.poll() is None  # still reading: stdin is open
        finally:
            seen.set()
            process.stdin.close()
            process.stdin = None  # closed: communicate() has nothing to send
        out, err = process.communicate(timeout=120)
    assert sent_before_close, err.decode()
    assert process.returncode == 0, err.decode()
    assert out.count(b"\n") == 300


@settings(deadline=None)
@given(
    texts=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=30),
    scores=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    top_k=st.one_of(st.none(), st.integers(1, 8)),
    min_score=st.one_of(st.none(), st.integers(0, 3)),
    piece=st.integers(1, 40),
    hold=st.sampled_from([0, 5, 1 << 17]),
)
def test_ranking_by_position_equals_ranking_built_results(
    texts: list[str],
    scores: list[int],
    top_k: int | None,
    min_score: int | None,
    piece: int,
    hold: int,
) -> None:
    from rerank_cli.core import pipeline
    from rerank_cli.core.pipeline import Filters, Planner, fold, rank, rank_results

    held, documents_module.HOLD = documents_module.HOLD, hold
    try:
        planner = Planner()
        given = [Document(t, (t + "\n").encode(), Source("f", i + 1)) for i, t in enumerate(texts)]
        planner.add(given)
        work = planner.finish()
    finally:
        documents_module.HOLD = held
    by_text = {"a": scores[0], "b": scores[1], "c": scores[2], "d": scores[3]}
    folded = fold(work, [float(by_text[t]) for t in work.texts])
    filters = Filters(top_k=top_k, min_score=min_score)
    whole_sort, pipeline.SORT_PIECE = pipeline.SORT_PIECE, piece  # long rankings: merged pieces
    try:
        lazily = [(r.rank, r.score, r.document) for r in rank(folded, filters)]
    finally:
        pipeline.SORT_PIECE = whole_sort
    built = [(r.rank, r.score, r.document) for r in rank_results(list(folded), filters)]
    assert lazily == built


@settings(deadline=None, max_examples=200)
@given(
    texts=st.lists(st.sampled_from(["a", "b", "c", "long one", "x"]), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=6),
    hold=st.sampled_from([0, 4, 1 << 17]),
)
def test_a_plan_built_block_by_block_is_the_plan_of_all(
    texts: list[str], cuts: list[int], hold: int
) -> None:
    """Blocks of any size, repeated texts across blocks, and a plan that starts to split
    documents part-way (a block with a long document gets the splitter, as long.wrap gives
    it; the others are taken whole): the same texts, units and documents as plan()."""
    from rerank_cli.core.pipeline import Planner, plan, whole

    def split(document: Document) -> list[tuple[Chunk | None, str]]:
        if document.text == "long one":
            return [(Chunk(0, 0, 4), "long"), (Chunk(1, 5, 8), "one")]
        return [(None, document.text)]

    def documents() -> list[Document]:
        return [Document(t, (t + "\n").encode(), Source("f", i + 1)) for i, t in enumerate(texts)]

    expected = plan(documents(), split)
    held, documents_module.HOLD = documents_module.HOLD, hold
    try:
        planner = Planner()
        given_documents = documents()
        start = 0
        for end in sorted({min(c, len(texts)) for c in cuts} | {len(texts)}):
            block = given_documents[start:end]
            planner.add(block, split if any(d.text == "long one" for d in block) else whole)
            start = end
        built = planner.finish()
    finally:
        documents_module.HOLD = held
    assert list(built.texts) == expected.texts
    assert built.units == expected.units
    assert list(built.documents) == [
        Document(d.text, d.raw, d.source, index=i) for i, d in enumerate(documents())
    ]


def test_long_error_reads_everything_before_sending_anything(tmp_path: Path) -> None:
    """--long error promises that nothing is sent when a document is over the limit: a piped
    run must not stream batches out before it has seen the last document. stdin stays open
    for a while after a first batch's worth of lines (a streamed run sends them at once), then
    a document over the limit arrives."""
    if not RERANK.exists():
        pytest.skip("the rerank script is not installed beside this interpreter")
    lines = b"".join(b"note %d: how streaming works, line by line\n" % i for i in range(300))
    env = process_environment(tmp_path)
    options = ["--batch-size", "16", "--long", "error", "--max-tokens", "50"]
    with RerankServer(api_key=TEST_KEY) as server:
        process = subprocess.Popen(
            [str(RERANK), "how", "--base-url", server.base_url, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(lines)
            process.stdin.flush()
            threading.Event().wait(2.0)  # a streamed run would have sent its first batches
            process.stdin.write(b"long " + b"word " * 3000 + b"\n")
        finally:
            process.stdin.close()
            process.stdin = None
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2, err.decode()
        assert b"<stdin>:301:" in err
        assert out == b""
        assert server.rerank_requests == []
