"""``rerank eval --dataset DIR``: a BEIR folder reranked (batch's job, on one session) and
judged; ``--save-run`` keeps the run, and judging that file gives the same figures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import RunCli
from tests.server import RerankServer

CORPUS = [
    {"_id": "d1", "title": "Cats", "text": "Cats purr and sleep all day."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs bark at the mailman and purr never."},
    {"_id": "d3", "title": "", "text": "Quantum computers use qubits."},
    {"_id": "d4", "title": "Qubits", "text": "A qubit is a two-level quantum system."},
    {"_id": "d5", "title": "Bread", "text": "Bread rises with yeast."},
    {
        "_id": "d6",
        "title": "Yeast",
        "text": "Yeast is a fungus that makes bread rise and cats sleep.",
    },
]
QUERIES = [
    {"_id": "q1", "text": "why do cats purr"},
    {"_id": "q2", "text": "what is a qubit"},
    {"_id": "q3", "text": "how does bread rise"},
    {"_id": "q9", "text": "a query of another split"},
]
QRELS = [
    ("q1", "d1", 1),
    ("q1", "d2", 0),
    ("q1", "d6", 0),
    ("q2", "d4", 2),
    ("q2", "d3", 1),
    ("q2", "d1", 0),
    ("q3", "d5", 1),
    ("q3", "d6", 1),
    ("q3", "d2", 0),
]
BM25 = """q1 Q0 d2 1 9.0 bm25
q1 Q0 d6 2 8.0 bm25
q1 Q0 d1 3 7.0 bm25
q1 Q0 d5 4 1.0 bm25
q2 Q0 d1 1 5.0 bm25
q2 Q0 d3 2 4.0 bm25
q2 Q0 d4 3 3.0 bm25
q3 Q0 d2 1 2.0 bm25
q3 Q0 d5 2 1.0 bm25
"""


def beir_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in CORPUS))
    (root / "queries.jsonl").write_bytes(b"".join(orjson.dumps(q) + b"\n" for q in QUERIES))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, d, r in QRELS]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def saved_run(path: Path) -> dict[str, list[str]]:
    """qid → docids in the order written."""
    run: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        qid, q0, docid, _, score, tag = line.split()
        assert q0 == "Q0" and tag == "rerank"
        float(score)
        run.setdefault(qid, []).append(docid)
    return run


def judged_again(cli: RunCli, dataset: Path, run: Path, *more: str) -> dict[str, object]:
    qrels = str(dataset / "qrels" / "test.tsv")
    result = cli("eval", "--qrels", qrels, "--run", str(run), "--per-query", *more)
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)  # type: ignore[no-any-return]


def test_every_judged_document_reranked_offline(cli: RunCli, tmp_path: Path) -> None:
    dataset = beir_folder(tmp_path / "beir")
    out = tmp_path / "reranked.trec"
    args = ["--at", "1,3", "--per-query"]
    result = cli(
        "eval", "--dataset", str(dataset), "--engine", "lexical", "--save-run", str(out), *args
    )
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)
    assert record == judged_again(cli, dataset, out, "--at", "1,3")
    assert record["queries"] == 3
    run = saved_run(out)
    assert set(run) == {"q1", "q2", "q3"}  # q9 is not judged: not ranked
    for qid, docids in run.items():  # the candidates: every document judged for the query
        assert sorted(docids) == sorted(d for q, d, _ in QRELS if q == qid)
    # title + text: "Qubits" is in d4's title only
    assert run["q2"][0] == "d4"
    assert record["per_query"]["q2"]["ndcg@1"] == 1.0


def test_candidates_from_a_run_cut_to_depth(cli: RunCli, tmp_path: Path) -> None:
    dataset = beir_folder(tmp_path / "beir")
    bm25 = tmp_path / "bm25.trec"
    bm25.write_text(BM25)
    out = tmp_path / "reranked.trec"
    result = cli(
        "eval", "--dataset", str(dataset), "--engine", "lexical", "--candidates", str(bm25),
        "--depth", "3", "--save-run", str(out), "--baseline", str(bm25), "--per-query",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)
    run = saved_run(out)
    assert sorted(run["q1"]) == ["d1", "d2", "d6"]  # bm25's top 3; d5 is 4th
    assert sorted(run["q3"]) == ["d2", "d5"]
    assert run["q1"][0] == "d1"
    again = judged_again(cli, dataset, out, "--baseline", str(bm25))
    assert record == again
    compared = record["baseline"]["metrics"]["mrr@10"]
    assert compared["run"] > compared["baseline"]
    assert compared["delta"] == pytest.approx(compared["run"] - compared["baseline"])


def test_against_the_loopback_server(api_cli: RunCli, cli: RunCli, tmp_path: Path) -> None:
    dataset = beir_folder(tmp_path / "beir")
    out = tmp_path / "reranked.trec"
    result = api_cli("eval", "--dataset", str(dataset), "--save-run", str(out), "--per-query")
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)
    assert record == judged_again(cli, dataset, out)
    assert sorted(saved_run(out)) == ["q1", "q2", "q3"]


def test_dry_run_prices_the_reranking_and_sends_nothing(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    dataset = beir_folder(tmp_path / "beir")
    out = tmp_path / "reranked.trec"
    result = api_cli("eval", "--dataset", str(dataset), "--dry-run", "--save-run", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == b""
    judged = len(QRELS)  # every judged document of the 3 judged queries, each pair once
    assert f"dry run: 3 queries; {judged} documents" in result.stderr
    assert server.rerank_requests == []
    assert not out.exists()


def test_stats_record_the_reranking_for_reproducing_it(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    dataset = beir_folder(tmp_path / "beir")
    stats = tmp_path / "stats.json"
    result = api_cli("eval", "--dataset", str(dataset), "--stats", str(stats), "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["queries"] == 3
    record = orjson.loads(stats.read_bytes())
    assert record["ranked"] == 3
    assert record["documents"] == sum(len(r.body["documents"]) for r in server.rerank_requests)
    assert record["run"]["model"] == server.rerank_requests[0].body["model"]


def test_dataset_problems(cli: RunCli, tmp_path: Path) -> None:
    dataset = beir_folder(tmp_path / "beir")
    run = tmp_path / "r.trec"
    run.write_text(BM25)
    qrels = str(dataset / "qrels" / "test.tsv")
    lexical = ["--engine", "lexical"]
    cases = [
        (["--dataset", str(tmp_path)], "no corpus.jsonl"),
        (["--dataset", str(dataset), "--qrels", qrels], "no --qrels/--run"),
        (["--dataset", str(dataset), "--depth", "5"], "--depth needs --candidates"),
        (["--qrels", qrels, "--run", str(run), "--save-run", "x"], "--save-run needs --dataset"),
        (["--qrels", qrels, "--run", str(run), "--engine", "lexical"], "--engine needs --dataset"),
        (["--qrels", qrels], "--dataset DIR"),
        (["--qrels", qrels, "--run", str(run), "--dry-run"], "--dry-run needs --dataset"),
        (["--qrels", qrels, "--run", str(run), "--stats", "-"], "--stats needs --dataset"),
    ]
    for args, message in cases:
        result = cli("eval", *args, *lexical[: 2 if "--dataset" in args else 0])
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    (dataset / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\tnope\t1\n")
    missing = cli("eval", "--dataset", str(dataset), *lexical)
    assert missing.exit_code == 2
    assert "docid nope (query q1) is not in the corpus" in missing.stderr
    assert "test.tsv" in missing.stderr
