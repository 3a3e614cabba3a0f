"""``rerank batch``: many queries on one session, through the real entry point against the
loopback server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from rerank_cli.errors import UsageError
from rerank_cli.sources.queries import id_key, parse_shard, shard_of
from tests.conftest import TEST_KEY, CliResult, RunCli, api_options
from tests.server import Fault, RerankServer, score

FAST_RETRY = {"retry-after-ms": "1"}
ROOT = Path(__file__).resolve().parent.parent


def write_queries(path: Path, lines: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return str(path)


def many(count: int, documents: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{n}",
            "query": f"question number {n}",
            "documents": [f"answer {n}.{d} about question {n}" for d in range(documents)],
        }
        for n in range(count)
    ]


def by_id(result: CliResult) -> dict[Any, dict[str, Any]]:
    records = result.records()
    found = {orjson.dumps(record["id"]): record for record in records}
    assert len(found) == len(records), "an id written twice"
    return found


def lines_of(path: Path) -> dict[bytes, dict[str, Any]]:
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    found = {id_key(record["id"]): record for record in records}
    assert len(found) == len(records), "an id written twice"
    return found


# --- what a query's results are -----------------------------------------------------------------


def test_each_query_ranks_as_rank_does(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    documents = [
        {"docid": "p", "text": "Paris is the capital of France."},
        {"docid": "b", "text": "Bananas are yellow."},
        {"docid": "blank", "text": "   "},  # skipped, as rank skips it: indexes stay equal
        {"docid": "l", "text": "Lyon is a city in France."},
        {"docid": "p2", "text": "Paris is the capital of France."},  # a tie, by input order
    ]
    queries = [
        {"id": "fr", "query": "capital of France", "documents": documents},
        {"id": 7, "query": "yellow fruit", "documents": ["Bananas are yellow.", "Paris", "x"]},
        {"query": "cities", "documents": documents[:2]},  # no id: its line number
    ]
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "--id-field", "docid", "-k", "3")
    assert result.exit_code == 0, result.stderr
    got = by_id(result)
    assert set(got) == {b'"fr"', b"7", b"3"}
    for line_id, query in zip(("fr", 7, 3), queries, strict=True):
        docs = tmp_path / "docs.jsonl"
        docs.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in query["documents"]))
        alone = api_cli(
            "rank", query["query"], "-i", str(docs), "--id-field", "docid", "-o", "jsonl", "-k", "3"
        )
        assert alone.exit_code == 0, alone.stderr
        expected = [
            {k: r[k] for k in ("rank", "index", "score", "id", "text") if k in r}
            for r in alone.records()
        ]
        line = got[orjson.dumps(line_id)]
        assert line["query"] == query["query"]
        assert line["results"] == expected
    assert got[b'"fr"']["results"][0]["score"] == score("capital of France", documents[0]["text"])


def test_per_line_instruction_overrides_the_option(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    queries = [
        {"id": 1, "query": "q one", "documents": ["a"]},
        {"id": 2, "query": "q two", "documents": ["a"], "instruction": "Find code"},
    ]
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "-I", "Find logs", "--instruction-mode", "query")
    assert result.exit_code == 0, result.stderr
    sent = sorted(request.body["query"] for request in server.rerank_requests)
    assert sent == [
        "<Instruct>: Find code\n<Query>: q two",
        "<Instruct>: Find logs\n<Query>: q one",
    ]


# --- one session ------------------------------------------------------------------------------


def test_thirty_queries_share_j_connections_and_run_concurrently(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    server.latency = 0.01
    server.hold_until_in_flight(2, timeout=5)  # released only if two queries are out together
    given = write_queries(tmp_path / "q.jsonl", many(30))
    result = api_cli("batch", given, "-j", "2")
    assert result.exit_code == 0, result.stderr
    assert len(by_id(result)) == 30
    assert len(server.rerank_requests) == 30
    assert len(server.connections_used) <= 2
    assert server.max_in_flight == 2


def test_a_pair_is_billed_once_and_a_document_once_per_query(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    shared = "The same document for every query."
    queries = [
        {"id": "a", "query": "first question", "documents": [shared, "only in a"]},
        {"id": "b", "query": "second question", "documents": [shared]},
        # The same query again: its pairs are a's, and a's line is still its own.
        {"id": "c", "query": "first question", "documents": ["only in a", shared, shared]},
    ]
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "--no-cache", "-j", "4")
    assert result.exit_code == 0, result.stderr
    # (first, shared), (first, only in a), (second, shared)
    assert server.billed_documents == 3
    got = by_id(result)
    for line in queries:
        records = got[orjson.dumps(line["id"])]["results"]
        assert sorted(r["index"] for r in records) == list(range(len(line["documents"])))
        for record in records:
            assert record["score"] == score(line["query"], line["documents"][record["index"]])


# --- --resume and --shard -------------------------------------------------------------------------


def test_resume_redoes_only_a_torn_last_line(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(6))
    out = tmp_path / "run.jsonl"
    first = api_cli("batch", given, "--out", str(out), "--no-cache")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == b""
    whole = lines_of(out)
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    torn = orjson.loads(lines[-1])
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a kill mid-write
    before = len(server.rerank_requests)

    again = api_cli("batch", given, "--out", str(out), "--resume", "--no-cache", "-v")
    assert again.exit_code == 0, again.stderr
    redone = server.rerank_requests[before:]
    assert [r.body["query"] for r in redone] == [torn["query"]]  # nothing complete re-sent
    assert lines_of(out) == whole
    assert "5 done before (--resume)" in again.stderr

    third = api_cli("batch", given, "--out", str(out), "--resume", "--no-cache")
    assert third.exit_code == 0, third.stderr
    assert len(server.rerank_requests) == before + 1
    assert lines_of(out) == whole


def blocks(data: bytes) -> dict[bytes, list[bytes]]:
    """A TREC run's lines by qid, each query's lines in one contiguous block."""
    found: dict[bytes, list[bytes]] = {}
    last = None
    for line in data.splitlines():
        qid = line.split()[0]
        assert qid == last or qid not in found, "a query written twice"
        found.setdefault(qid, []).append(line)
        last = qid
    return found


@pytest.mark.parametrize("cut", ["torn line", "whole lines", "none"])
def test_resume_a_trec_run_redoes_its_last_query_only(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, cut: str
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(6, documents=4))
    out = tmp_path / "run.trec"
    options = ("-o", "trec", "--out", str(out), "--no-cache", "-j", "1")
    assert api_cli("batch", given, *options).exit_code == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    last_qid = lines[-1].split()[0]
    if cut == "torn line":  # the kill came in the middle of the last query's last line
        out.write_bytes(whole[: -len(lines[-1]) // 2])
    elif cut == "whole lines":  # ... or between two of its lines
        out.write_bytes(b"".join(lines[:-2]))
    before = len(server.rerank_requests)

    again = api_cli("batch", given, *options, "--resume", "-v")
    assert again.exit_code == 0, again.stderr
    # A run cannot show that its last query is complete: that one, and only it, is redone.
    redone = server.rerank_requests[before:]
    assert [f"q{r.body['query'].split()[-1]}".encode() for r in redone] == [last_qid]
    assert "5 done before (--resume)" in again.stderr
    assert blocks(out.read_bytes()) == blocks(whole)


def test_resume_refuses_a_trec_file_that_is_not_a_run(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(2))
    out = tmp_path / "notes.txt"
    kept = b"my notes\nq0 Q0 0 1 0.5 rerank\n"
    out.write_bytes(kept)
    result = api_cli("batch", given, "-o", "trec", "--out", str(out), "--resume")
    assert result.exit_code == 2
    assert "notes.txt:1 is not a TREC run line" in result.stderr
    assert out.read_bytes() == kept
    assert server.rerank_requests == []


def test_resume_takes_a_line_without_its_newline_as_torn(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(3))
    out = tmp_path / "run.jsonl"
    assert api_cli("batch", given, "--out", str(out), "--no-cache").exit_code == 0
    whole = lines_of(out)
    data = out.read_bytes()
    last = orjson.loads(data.splitlines()[-1])
    out.write_bytes(data[:-1])  # the whole object, but the kill came before its newline
    before = len(server.rerank_requests)
    again = api_cli("batch", given, "--out", str(out), "--resume", "--no-cache")
    assert again.exit_code == 0, again.stderr
    assert [r.body["query"] for r in server.rerank_requests[before:]] == [last["query"]]
    assert out.read_bytes().endswith(b"\n")
    assert lines_of(out) == whole


def test_resume_redoes_failed_queries_and_starts_a_missing_file(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(4))
    out = tmp_path / "run.jsonl"
    server.fail_first(1, Fault.error(500, "boom", headers=FAST_RETRY))
    first = api_cli("batch", given, "--out", str(out), "--resume", "--max-retries", "0", "-j", "1")
    assert first.exit_code == 4
    assert sum("error" in record for record in lines_of(out).values()) == 1
    again = api_cli("batch", given, "--out", str(out), "--resume")
    assert again.exit_code == 0, again.stderr
    records = lines_of(out)
    assert len(records) == 4
    assert all("results" in record for record in records.values())


def test_shards_partition_the_queries_and_their_union_is_the_whole(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(20, documents=2))
    whole = tmp_path / "whole.jsonl"
    assert api_cli("batch", given, "--out", str(whole)).exit_code == 0
    union: dict[bytes, dict[str, Any]] = {}
    for k in range(3):
        part = tmp_path / f"part{k}.jsonl"
        result = api_cli("batch", given, "--shard", f"{k}/3", "--out", str(part))
        assert result.exit_code == 0, result.stderr
        records = lines_of(part)
        assert all(shard_of(key, 3) == k for key in records)
        assert not set(records) & set(union)
        union.update(records)
    assert union == lines_of(whole)


def test_shard_hash_is_stable_and_checked() -> None:
    # The first 8 bytes of sha256(b'"q0"'), big-endian, mod 4: fixed for every machine.
    import hashlib

    assert shard_of(b'"q0"', 4) == int(hashlib.sha256(b'"q0"').hexdigest()[:16], 16) % 4
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


# --- failures -------------------------------------------------------------------------------------


def test_a_failing_query_is_an_error_line_and_the_others_go_on(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(5))
    server.fail_first(1, Fault.error(500, "boom", headers=FAST_RETRY))
    result = api_cli("batch", given, "--max-retries", "0", "-j", "1")
    assert result.exit_code == 4, result.stderr
    records = result.records()
    failed = [r for r in records if "error" in r]
    assert len(records) == 5
    assert len(failed) == 1
    assert failed[0]["error"]["code"] == 4
    assert failed[0]["error"]["status"] == 500
    assert "boom" in failed[0]["error"]["message"]
    assert set(failed[0]) == {"id", "query", "error"}
    assert "rerank: error: 1 query of 5 failed" in result.stderr


def test_refusals_only_exit_3(api_cli: RunCli, server: RerankServer, tmp_path: Path) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(3))
    server.fail_first(1, Fault.error(400, "that query is not allowed"))
    result = api_cli("batch", given, "-j", "1")
    assert result.exit_code == 3, result.stderr
    failed = [r for r in result.records() if "error" in r]
    assert [f["error"]["code"] for f in failed] == [3]


def test_fail_fast_stops_at_the_first_failure(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    server.latency = 0.05
    given = write_queries(tmp_path / "q.jsonl", many(12))
    server.fail_first(1, Fault.error(500, "boom", headers=FAST_RETRY))
    result = api_cli("batch", given, "--max-retries", "0", "-j", "1", "--fail-fast")
    assert result.exit_code == 4
    records = result.records()
    assert sum("error" in r for r in records) == 1
    assert len(records) < 12
    assert len(server.rerank_requests) < 12
    assert "boom" in result.stderr


# --- formats, cost, input errors ----------------------------------------------------------------


def test_trec_output(api_cli: RunCli, server: RerankServer, tmp_path: Path) -> None:
    queries = [
        {
            "id": "q1",
            "query": "capital of France",
            "documents": [
                {"docid": "D1", "text": "Bananas are yellow."},
                {"docid": "D2", "text": "Paris is the capital of France."},
            ],
        },
        {"id": 2, "query": "yellow", "documents": ["Bananas are yellow.", "Paris"]},
    ]
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "-o", "trec", "--id-field", "docid", "-j", "1")
    assert result.exit_code == 0, result.stderr
    lines = sorted(result.text.splitlines())
    france = sorted(
        [
            ("D1", score("capital of France", "Bananas are yellow.")),
            ("D2", score("capital of France", "Paris is the capital of France.")),
        ],
        key=lambda pair: -pair[1],
    )
    yellow = sorted(
        [("0", score("yellow", "Bananas are yellow.")), ("1", score("yellow", "Paris"))],
        key=lambda pair: -pair[1],
    )
    expected = [f"q1 Q0 {d} {n} {s!r} rerank" for n, (d, s) in enumerate(france, 1)]
    expected += [f"2 Q0 {d} {n} {s!r} rerank" for n, (d, s) in enumerate(yellow, 1)]
    assert lines == sorted(expected)
    for line in lines:
        assert len(line.split()) == 6


def test_trec_refuses_ids_with_spaces_and_resume_needs_out(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    given = write_queries(tmp_path / "q.jsonl", [{"id": "a b", "query": "q", "documents": ["x"]}])
    result = api_cli("batch", given, "-o", "trec")
    assert result.exit_code == 2
    assert 'q.jsonl:1: id "a b"' in result.stderr
    assert api_cli("batch", given, "--resume").exit_code == 2
    assert server.rerank_requests == []


def test_dry_run_sums_the_file_and_sends_nothing(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    queries = many(4, documents=3)
    queries.append(
        {"id": "again", "query": queries[0]["query"], "documents": queries[0]["documents"]}
    )
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert server.rerank_requests == []
    assert "dry run: 5 queries; 15 documents, 12 unique, 0 cached, 12 to send" in result.stderr
    report = api_cli("batch", given, "--dry-run", "-o", "jsonl")
    data = orjson.loads(report.stdout)
    assert (data["queries"], data["documents"], data["to_send"]) == (5, 15, 12)
    assert data["estimated_cost"] == pytest.approx(12 * data["price_per_1k"] / 1000)
    # After two queries are ranked, the cache answers them.
    two = write_queries(tmp_path / "two.jsonl", queries[:2])
    assert api_cli("batch", two).exit_code == 0
    sent = len(server.rerank_requests)
    cached = api_cli("batch", given, "--dry-run")
    assert "6 cached, 6 to send" in cached.stderr
    assert len(server.rerank_requests) == sent


def test_budget_for_the_whole_file(api_cli: RunCli, server: RerankServer, tmp_path: Path) -> None:
    given = write_queries(tmp_path / "q.jsonl", many(4, documents=3))
    result = api_cli("batch", given, "--max-docs", "11")
    assert result.exit_code == 2
    assert "refusing to send 12 documents" in result.stderr
    assert server.rerank_requests == []
    assert api_cli("batch", given, "--max-docs", "12").exit_code == 0


def test_an_invalid_line_stops_the_run_before_anything_is_sent(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    good = orjson.dumps({"id": 1, "query": "q", "documents": ["a"]}).decode()
    cases = {
        "{not json": "q.jsonl:3: invalid JSON",
        '{"id": 2, "documents": ["a"]}': "q.jsonl:3: no query",
        '{"id": 2, "query": "q", "documents": "a"}': "q.jsonl:3: documents must be a list",
        '{"id": 2, "query": "q", "documents": [{"body": 1, "x": null}, {"y": 1}]}': (
            "q.jsonl:3: document 1: no text field"
        ),
        '{"id": 1, "query": "q", "documents": ["a"]}': (
            "q.jsonl:3: duplicate id 1 (first on line 1)"
        ),
        '{"id": 2, "query": "  ", "documents": ["a"]}': "q.jsonl:3: the query is blank",
    }
    for bad, message in cases.items():
        path = tmp_path / "q.jsonl"
        path.write_text(f"{good}\n\n{bad}\n")
        result = api_cli("batch", str(path))
        assert result.exit_code == 2, (bad, result.stderr)
        assert f"rerank: error: {path}:3: " in result.stderr, (bad, result.stderr)
        assert message in result.stderr, (bad, result.stderr)
        assert result.stdout == b""
    assert server.rerank_requests == []


def test_stdin_verbose_and_stats(api_cli: RunCli, server: RerankServer, tmp_path: Path) -> None:
    queries = many(3, documents=2)
    stdin = b"".join(orjson.dumps(line) + b"\n" for line in queries)
    stats = tmp_path / "stats.json"
    result = api_cli("batch", "-", "-v", "--stats", str(stats), stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert len(result.records()) == 3
    assert "3 queries, 3 ranked; 6 documents" in result.stderr
    data = orjson.loads(stats.read_bytes())
    assert (data["queries"], data["ranked"], data["failed"], data["billed"]) == (3, 3, 0, 6)
    assert data["requests"] == 3


# --- --corpus, --candidates, --stats' run record ------------------------------------------------

CORPUS = [
    {"_id": "d0", "title": "France", "text": "Paris is the capital of France."},
    {"_id": "d1", "title": "", "text": "Bananas are yellow."},
    {"_id": "d2", "title": "Lyon", "text": "Lyon is a city in France."},
    {"_id": "d3", "title": "Fruit", "text": "Apples are red or green."},
    {"_id": "d4", "text": "The Eiffel tower is in Paris."},
]


def beir(document: dict[str, str]) -> str:
    return (document.get("title", "") + " " + document["text"]).strip()


def write_corpus(tmp_path: Path) -> str:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in CORPUS))
    return str(path)


def test_corpus_ranks_every_query_as_rank_ranks_the_corpus(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("Paris is the capital of France.\nBananas are yellow.\n\nLyon is in France.\n")
    queries = [{"id": "fr", "query": "capital of France"}, {"id": 2, "query": "yellow fruit"}]
    given = write_queries(tmp_path / "q.jsonl", queries)
    result = api_cli("batch", given, "--corpus", str(docs), "-F", "lines", "-k", "2")
    assert result.exit_code == 0, result.stderr
    got = by_id(result)
    assert set(got) == {b'"fr"', b"2"}
    for query in queries:
        alone = api_cli("rank", query["query"], "-i", str(docs), "-o", "jsonl", "-k", "2")
        assert alone.exit_code == 0, alone.stderr
        expected = [{k: r[k] for k in ("rank", "index", "score", "text")} for r in alone.records()]
        assert got[orjson.dumps(query["id"])]["results"] == expected
    # A line with its own documents as well is an error, before anything is sent.
    sent = len(server.rerank_requests)
    both = write_queries(tmp_path / "both.jsonl", [{"id": 1, "query": "q", "documents": ["a"]}])
    refused = api_cli("batch", both, "--corpus", str(docs))
    assert refused.exit_code == 2
    assert "both.jsonl:1: the line has its own documents and --corpus" in refused.stderr
    assert len(server.rerank_requests) == sent


def test_corpus_ids_and_beir_title_text(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path)
    given = write_queries(tmp_path / "q.jsonl", [{"id": "q1", "query": "capital of France"}])
    result = api_cli("batch", given, "--corpus", corpus, "--id-field", "_id", "-o", "trec")
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.text.splitlines()]
    expected = sorted(
        ((d["_id"], score("capital of France", beir(d))) for d in CORPUS),
        key=lambda pair: -pair[1],
    )
    assert [(row[2], float(row[4])) for row in rows] == expected
    sent = {text for request in server.rerank_requests for text in request.body["documents"]}
    assert sent == {beir(d) for d in CORPUS}  # "Bananas are yellow." without the blank title
    # Without --id-field, a document's id is its index in the corpus.
    plain = api_cli("batch", given, "--corpus", corpus, "-o", "trec")
    assert sorted(line.split()[2] for line in plain.text.splitlines()) == list("01234")


def test_candidates_rerank_only_the_runs_top_depth(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path)
    queries = [
        {"id": "q1", "query": "capital of France"},
        {"id": "q2", "query": "fruit colours"},
        {"id": "q3", "query": "not in the run"},
    ]
    given = write_queries(tmp_path / "q.jsonl", queries)
    run = tmp_path / "bm25.trec"
    run.write_text(
        # trec_eval's order: score desc, then docid desc — d4 (1.0) before d2 (1.0); the
        # rank column is ignored.
        "q1 Q0 d2 1 1.0 bm25\n"
        "q1 Q0 d0 2 3.5 bm25\n"
        "q1 Q0 d4 3 1.0 bm25\n"
        "q1 Q0 d1 4 0.5 bm25\n"
        "q2 Q0 d3 1 2 bm25\n"
        "q2 Q0 d1 2 1 bm25\n"
        "q9 Q0 d0 1 1 bm25\n"  # a query not in the file: ignored
    )
    common = ("--corpus", corpus, "--id-field", "_id", "--candidates", str(run), "--no-cache")
    result = api_cli("batch", given, *common, "--depth", "2")
    assert result.exit_code == 0, result.stderr
    got = by_id(result)
    q1 = got[b'"q1"']["results"]
    assert len(q1) == 2
    assert {r["id"] for r in q1} == {"d0", "d4"}  # by the rank column it would be d2, d0
    index = {d["_id"]: n for n, d in enumerate(CORPUS)}
    for record in q1:
        assert record["index"] == index[record["id"]]  # the corpus index
        assert record["score"] == score("capital of France", beir(CORPUS[record["index"]]))
    assert [r["id"] for r in q1] == [
        i for i, _ in sorted(((r["id"], r["score"]) for r in q1), key=lambda p: -p[1])
    ]
    assert {r["id"] for r in got[b'"q2"']["results"]} == {"d3", "d1"}
    assert got[b'"q3"']["results"] == []
    assert "1 query with no candidates in" in result.stderr
    assert server.billed_documents == 4  # 2 + 2: only the named ids, nothing for q3
    # Default depth 100: all four of q1's.
    wide = api_cli("batch", given, *common)
    assert len(by_id(wide)[b'"q1"']["results"]) == 4


def test_a_candidate_missing_from_the_corpus_is_exit_2_with_nothing_sent(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path)
    given = write_queries(
        tmp_path / "q.jsonl", [{"id": "q1", "query": "a"}, {"id": "q2", "query": "b"}]
    )
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d0 1 2 x\nq2 Q0 d1 1 2 x\nq2 Q0 nowhere 2 1 x\n")
    result = api_cli(
        "batch", given, "--corpus", corpus, "--id-field", "_id", "--candidates", str(run)
    )
    assert result.exit_code == 2, result.stderr
    assert "run.trec:3: docid nowhere (query q2) is not in the corpus" in result.stderr
    assert result.stdout == b""
    assert server.rerank_requests == []
    # Past --depth it is not a candidate: no error.
    cut = api_cli(
        "batch", given, "--corpus", corpus, "--id-field", "_id", "--candidates", str(run),
        "--depth", "1",
    )  # fmt: skip
    assert cut.exit_code == 0, cut.stderr
    for args, message in {
        ("--candidates", str(run)): "--candidates needs --corpus",
        ("--corpus", corpus, "--depth", "3"): "--depth needs --candidates",
        ("-F", "lines"): "-F/--format is the --corpus format",
    }.items():
        refused = api_cli("batch", given, *args)
        assert refused.exit_code == 2, refused.stderr
        assert message in refused.stderr


def test_stats_record_what_makes_the_run_reproducible(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    import hashlib

    from rerank_cli import __version__
    from rerank_cli.providers.instructions import template_text
    from tests.conftest import TEST_KEY

    corpus = write_corpus(tmp_path)
    given = write_queries(tmp_path / "q.jsonl", [{"id": 1, "query": "capital of France"}])
    stats = tmp_path / "stats.json"
    args = ("batch", given, "--corpus", corpus, "--stats", str(stats), "-I", "Find facts")
    first = api_cli(*args, "--instruction-mode", "template", "--max-tokens", "300")
    assert first.exit_code == 0, first.stderr
    assert TEST_KEY.encode() not in stats.read_bytes()
    run = orjson.loads(stats.read_bytes())["run"]
    template = template_text("template")
    assert template is not None
    assert run == run | {
        "rerank_version": __version__,
        "profile": "gigarouter",
        "endpoint_host": f"127.0.0.1:{server.port}",
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "instruction": "Find facts",
        "instruction_mode": "template",
        "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
        "max_tokens": 300,
        "long": "chunk",
        "chunk_overlap": None,
        "cache_hits": 0,
        "corpus": corpus,
    }
    query_template = template_text("query")
    assert query_template is not None
    again = api_cli(*args, "--instruction-mode", "query")
    assert again.exit_code == 0, again.stderr
    run = orjson.loads(stats.read_bytes())["run"]
    assert run["instruction_mode"] == "query"
    assert run["template_sha256"] == hashlib.sha256(query_template.encode()).hexdigest()
    assert run["cache_hits"] == 0  # another mode: another cache scope
    third = api_cli(*args, "--instruction-mode", "query")
    assert third.exit_code == 0, third.stderr
    assert orjson.loads(stats.read_bytes())["run"]["cache_hits"] == len(CORPUS)
    # No instruction in query mode: the query goes alone, no template.
    bare = api_cli("batch", given, "--corpus", corpus, "--stats", str(stats))
    assert bare.exit_code == 0, bare.stderr
    run = orjson.loads(stats.read_bytes())["run"]
    assert (run["instruction"], run["template_sha256"]) == (None, None)
    assert TEST_KEY.encode() not in stats.read_bytes()


def test_a_run_that_is_not_one_is_refused(tmp_path: Path) -> None:
    from rerank_cli.errors import InputError
    from rerank_cli.sources.corpus import read_run
    from rerank_cli.sources.records import ReadReport

    for bad, message in {
        b"q1 Q0 d1 1 2.0\n": "run:1: not a TREC run line: expected 'qid Q0 docid rank score tag'",
        b"q1 Q0 d1 1 nan x\n": "run:1: the score must be a finite number, got 'nan'",
        b"q1 Q0 d1 1 2 x\n\nq1 Q0 d1 2 1 x\n": "run:3: 'd1' ranked twice for query 'q1'",
    }.items():
        with pytest.raises(InputError) as caught:
            read_run(bad, "run", ReadReport())
        assert message in str(caught.value)
    ordered = read_run(b"q 0 a 1 1 t\nq 0 c 2 1 t\nq 0 b 3 2 t\n", "run", ReadReport())["q"]
    assert [c.docid for c in ordered] == ["b", "c", "a"]
    assert [c.line for c in ordered] == [3, 2, 1]


def test_depth_cuts_where_eval_orders_the_run(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    """Scores equal in single precision are a tie for trec_eval (docid descending): --depth 1
    keeps the document ``rerank eval`` ranks first, not the one a double compare would."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b'{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta"}\n')
    run = tmp_path / "first.trec"
    run.write_text("q Q0 a 1 0.99999997 bm25\nq Q0 b 2 0.99999994 bm25\n")
    given = write_queries(tmp_path / "q.jsonl", [{"id": "q", "query": "alpha"}])
    options = ("--corpus", str(corpus), "--id-field", "id", "--candidates", str(run))
    result = api_cli("batch", given, *options, "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in result.records()[0]["results"]] == ["b"]


def test_candidates_may_be_a_batch_run(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b"".join(
        orjson.dumps({"id": f"d{n}", "text": f"text {n}"}) + b"\n" for n in range(4)
    ))  # fmt: skip
    first = tmp_path / "first.jsonl"
    results = [
        {"rank": n + 1, "index": 3 - n, "score": 3.0 - n, "id": f"d{3 - n}"} for n in range(4)
    ]
    first.write_bytes(orjson.dumps({"id": "q", "query": "x", "results": results}) + b"\n")
    given = write_queries(tmp_path / "q.jsonl", [{"id": "q", "query": "text 1"}])
    options = ("--corpus", str(corpus), "--id-field", "id", "--candidates", str(first))
    result = api_cli("batch", given, *options, "--depth", "2")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["id"] for r in result.records()[0]["results"]) == ["d2", "d3"]


def test_candidates_need_unique_corpus_ids(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    run = tmp_path / "run"
    run.write_text("1 Q0 a 1 1 t\n")
    given = write_queries(tmp_path / "q.jsonl", [{"id": 1, "query": "q"}])
    result = api_cli(
        "batch", given, "--corpus", str(corpus), "--id-field", "_id", "--candidates", str(run)
    )
    assert result.exit_code == 2
    assert "duplicate document id a (documents 0 and 1)" in result.stderr
    assert server.rerank_requests == []


# --- a real kill ---------------------------------------------------------------------------------


def test_sigkill_mid_run_then_resume_writes_each_query_once_and_pays_only_in_flight_twice(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    """``rerank batch --out`` in a process of its own, SIGKILLed once some queries are written,
    then ``--resume``: every query once, the results of an uninterrupted run, and nothing paid
    twice but the batches in flight at the kill (at most -j of them: one per connection)."""
    count, documents, jobs = 60, 4, 2
    given = write_queries(tmp_path / "q.jsonl", many(count, documents))
    out = tmp_path / "run.jsonl"
    server.latency = 0.1  # one batch per query: 30 rounds of 2, ~3 s uninterrupted
    env = {**os.environ, **isolated_env, "GR_KEY": TEST_KEY, "PYTHONPATH": str(ROOT)}
    options = ("--out", str(out), "-j", str(jobs))
    process = subprocess.Popen(
        [sys.executable, "-m", "rerank_cli", "batch", given, *options, *api_options(server)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_bytes().count(b"\n") >= 10):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no 10 queries written in 60 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    server.latency = 0.0  # what is left, fast
    # The dead process's connections done with: whatever it had sent is recorded and billed.
    deadline = time.monotonic() + 30
    while server.connections_open:
        assert time.monotonic() < deadline, "the killed process's connections still open"
        time.sleep(0.01)
    written = out.read_bytes()
    complete = [orjson.loads(line) for line in written.split(b"\n")[:-1]]
    assert 10 <= len(complete) < count  # killed mid-run: some written, not all
    first = list(server.rerank_requests)
    billed = server.billed_documents

    resumed = api_cli("batch", given, *options, "--resume", "-v")
    assert resumed.exit_code == 0, resumed.stderr
    assert f"{len(complete)} done before (--resume)" in resumed.stderr
    again = server.rerank_requests[len(first) :]
    done_before = {record["query"] for record in complete}
    assert not done_before & {r.body["query"] for r in again}  # nothing complete re-sent
    # Re-sent: only what was in flight at the kill (billed, never received), one per connection.
    twice = {r.body["query"] for r in first} & {r.body["query"] for r in again}
    assert len(twice) <= jobs
    assert len(first) + len(again) <= count + jobs
    assert server.billed_documents - billed == len(again) * documents
    assert server.billed_documents <= (count + jobs) * documents
    assert sorted(r.body["query"] for r in first + again if r.body["query"] not in twice) == sorted(
        {line["query"] for line in many(count)} - twice
    )
    final = out.read_bytes()
    assert final.endswith(b"\n")
    records = lines_of(out)  # fails on an id written twice
    assert len(records) == count

    # The same file, uninterrupted, on an empty cache: the same results, query for query.
    reference = tmp_path / "reference.jsonl"
    whole = api_cli("batch", given, "--out", str(reference), "-j", str(jobs), "--no-cache")
    assert whole.exit_code == 0, whole.stderr
    assert records == lines_of(reference)


def test_a_rejected_key_stops_the_run_at_once(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    """Every query would fail alike: one refusal ends the run (exit 3), not one per query."""
    lines = [{"id": f"q{n}", "query": f"capital {n}", "documents": ["a", "b"]} for n in range(20)]
    queries = tmp_path / "q.jsonl"
    queries.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    done = api_cli("batch", str(queries), "-j", "1", env={"GR_KEY": "gr-wrong-key-000000"})
    assert done.exit_code == 3, done.stderr
    assert "was rejected" in done.stderr
    assert len(server.rerank_requests) < 20
