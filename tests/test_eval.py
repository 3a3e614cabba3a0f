"""``rerank eval``: the metrics proved equal to trec_eval (pytrec_eval) on generated qrels and
runs, then the command through its real entry point."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.core.metrics import evaluate, metric_names, query_metrics, ranking
from tests.conftest import RunCli

# CI (.ci/run) sets RERANK_REQUIRE_PYTREC_EVAL=1: a missing pytrec_eval then fails, not skips.
try:
    import pytrec_eval

    HAVE_PYTREC_EVAL = True
except ImportError:  # pragma: no cover - the dev extra installs it
    if os.environ.get("RERANK_REQUIRE_PYTREC_EVAL") == "1":
        raise
    HAVE_PYTREC_EVAL = False

needs_pytrec_eval = pytest.mark.skipif(
    not HAVE_PYTREC_EVAL,
    reason="pytrec_eval is not installed (pip install -e '.[dev]' installs pytrec-eval-terrier)",
)

TOLERANCE = 1e-6

# --- generated qrels and runs --------------------------------------------------------------------

# Few docids, of several lengths and cases ("d10" < "d9" < "D9" byte-wise...): ties meet them.
DOCIDS = st.sampled_from(["d1", "d2", "d9", "d10", "d11", "D9", "a", "zz", "x-1", "é"])
QIDS = st.sampled_from(["q1", "q2", "q3", "q10", "7"])
# Scores from a small set make ties common; any finite float now and then.
# Scores from a small set make ties common; near-ties that single precision merges (trec_eval
# keeps scores as C floats); any finite float now and then.
SCORES = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, 0.99999994, 0.99999997, 1.0 + 1e-9, 1e-40]),
    st.floats(allow_nan=False, allow_infinity=False),
)
RELEVANCE = st.integers(min_value=-1, max_value=3)  # graded, with judged non-relevant and < 0

qrels_strategy = st.dictionaries(QIDS, st.dictionaries(DOCIDS, RELEVANCE, max_size=8), max_size=5)
# A query of the run may rank nothing (batch output with "results": []): pytrec_eval counts it.
run_strategy = st.dictionaries(QIDS, st.dictionaries(DOCIDS, SCORES, max_size=10), max_size=5)
AT_STRATEGY = st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=3, unique=True)


def trec_eval(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], at: list[int]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's figures under our names; MRR@k is recip_rank on the run cut to its top k
    in trec_eval's order (trec_eval has no MRR@k)."""
    measures = {"map"} | {f"{m}_{k}" for m in ("ndcg_cut", "recall", "P") for k in at}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out: dict[str, dict[str, float]] = {}
    for qid, figures in full.items():
        mine = {"map": figures["map"]}
        for k in at:
            mine[f"ndcg@{k}"] = figures[f"ndcg_cut_{k}"]
            mine[f"recall@{k}"] = figures[f"recall_{k}"]
            mine[f"p@{k}"] = figures[f"P_{k}"]
            top = {d: run[qid][d] for d in ranking(run[qid])[:k]}
            cut = pytrec_eval.RelevanceEvaluator({qid: qrels[qid]}, {"recip_rank"})
            mine[f"mrr@{k}"] = cut.evaluate({qid: top}).get(qid, {}).get("recip_rank", 0.0)
        out[qid] = mine
    return out


@needs_pytrec_eval
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qrels=qrels_strategy, run=run_strategy, at=AT_STRATEGY)
def test_every_metric_equals_trec_eval(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], at: list[int]
) -> None:
    expected = trec_eval(qrels, run, at)
    got = evaluate(qrels, run, at)
    # The queries averaged over are trec_eval's: those of both the run and the qrels.
    assert set(got.per_query) == set(expected)
    for qid, figures in expected.items():
        for name, value in figures.items():
            assert math.isclose(got.per_query[qid][name], value, abs_tol=TOLERANCE), (qid, name)
    for name in metric_names(sorted(at)):
        values = [figures[name] for figures in expected.values()]
        mean = pytrec_eval.compute_aggregated_measure(name, values) if values else 0.0
        assert math.isclose(got.mean[name], mean, abs_tol=TOLERANCE), name
    judged = {qid for qid, judgements in qrels.items() if judgements}
    assert set(got.not_in_run) == judged - set(run)
    assert set(got.not_judged) == set(run) - judged


@needs_pytrec_eval
@settings(max_examples=200, deadline=None)
@given(
    docids=st.lists(DOCIDS, min_size=2, max_size=10, unique=True),
    score=st.sampled_from([0.0, 1.0, -2.5]),
)
def test_ties_go_by_docid_descending_as_in_trec_eval(docids: list[str], score: float) -> None:
    """Every document tied: trec_eval's order is docid descending. One relevant document at a
    time: its reciprocal rank tells where trec_eval put it."""
    run = {"q": dict.fromkeys(docids, score)}
    order = ranking(run["q"])
    assert order == sorted(docids, reverse=True)
    for position, docid in enumerate(order, 1):
        qrels = {"q": {docid: 1}}
        figures = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
        assert figures["q"]["recip_rank"] == pytest.approx(1 / position)


@needs_pytrec_eval
@pytest.mark.parametrize(
    ("higher", "lower"), [(1.0 + 1e-9, 1.0), (0.99999997, 0.99999994), (1e40, 1e39)]
)
def test_scores_equal_in_single_precision_tie_as_in_trec_eval(higher: float, lower: float) -> None:
    """Scores apart in double precision, equal as C floats: a tie, so docid "b" ranks before
    "a" although "a" scored higher."""
    run = {"q": {"a": higher, "b": lower}}
    assert ranking(run["q"]) == ["b", "a"]
    figures = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"}).evaluate(run)
    assert figures["q"]["recip_rank"] == 0.5


def test_the_cases_by_hand() -> None:
    """Independent of pytrec_eval: graded nDCG, unjudged documents, nothing relevant."""
    judged = {"a": 2, "b": 0, "c": 1}
    scores = {"x": 3.0, "a": 2.0, "c": 2.0, "b": 1.0}  # x unjudged; a and c tied: c first
    figures = query_metrics(judged, scores, [1, 3])
    assert figures["p@1"] == 0.0
    assert figures["mrr@1"] == 0.0
    assert figures["mrr@3"] == 0.5
    assert figures["recall@3"] == 1.0
    assert figures["p@3"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 + 1 / math.log2(3)
    assert figures["ndcg@3"] == pytest.approx(dcg / ideal)
    assert figures["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert set(query_metrics({"a": 0}, {"a": 1.0}, [5]).values()) == {0.0}


# --- the command ---------------------------------------------------------------------------------

TREC_QRELS = "q1 0 d1 1\nq1 0 d2 0\nq1 0 d3 2\nq2 0 d4 1\nq3 0 d9 1\n"
BEIR_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq1\td3\t2\nq2\td4\t1\nq3\td9\t1\n"
TREC_RUN = (
    "q1 Q0 d2 1 0.9 t\nq1 Q0 d3 2 0.8 t\nq1 Q0 d1 3 0.7 t\nq2 Q0 d5 1 0.9 t\nq2 Q0 d4 2 0.1 t\n"
)
QRELS_DICT = {"q1": {"d1": 1, "d2": 0, "d3": 2}, "q2": {"d4": 1}, "q3": {"d9": 1}}
RUN_DICT = {"q1": {"d2": 0.9, "d3": 0.8, "d1": 0.7}, "q2": {"d5": 0.9, "d4": 0.1}}


def batch_line(qid: Any, scores: dict[str, float], with_id: bool = True) -> dict[str, Any]:
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    results = []
    for rank, (docid, score) in enumerate(ranked, 1):
        result: dict[str, Any] = {"rank": rank, "index": int(docid[1:]), "score": score}
        if with_id:
            result["id"] = docid
        results.append(result)
    return {"id": qid, "query": "?", "results": results}


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def expected_mean(at: list[int]) -> dict[str, float]:
    return evaluate(QRELS_DICT, RUN_DICT, at).mean


@pytest.mark.parametrize("qrels_text", [TREC_QRELS, BEIR_QRELS], ids=["trec", "beir"])
def test_trec_and_beir_qrels_give_the_same_figures(
    cli: RunCli, tmp_path: Path, qrels_text: str
) -> None:
    qrels = write(tmp_path / "qrels", qrels_text)
    run = write(tmp_path / "run.trec", TREC_RUN)
    result = cli("eval", "--qrels", qrels, "--run", run, "--at", "1,3")
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)  # json in a pipe
    assert record["queries"] == 2
    assert record["at"] == [1, 3]
    assert record["metrics"] == pytest.approx(expected_mean([1, 3]))
    # q1: d2 (0) d3 (2) d1 (1); by hand, independent of the module
    ideal = 2 + 1 / math.log2(3)
    q1 = (2 / math.log2(3) + 1 / math.log2(4)) / ideal
    q2 = (1 / math.log2(3)) / 1
    assert record["metrics"]["ndcg@3"] == pytest.approx((q1 + q2) / 2)
    assert record["metrics"]["mrr@1"] == 0.0
    assert record["metrics"]["mrr@3"] == 0.5
    assert "per_query" not in record
    # q3 is judged but not ranked: not averaged, and said so
    assert record["not_in_run"] == 1
    assert "1 query of the qrels is not in the run" in result.stderr
    assert "trec_eval" in result.stderr


@needs_pytrec_eval
def test_the_command_equals_pytrec_eval(cli: RunCli, tmp_path: Path) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    run = write(tmp_path / "run.trec", TREC_RUN)
    record = orjson.loads(cli("eval", "--qrels", qrels, "--run", run, "--per-query").stdout)
    expected = trec_eval(QRELS_DICT, RUN_DICT, [10])
    assert list(record["per_query"]) == list(expected)
    for qid, figures in expected.items():
        assert record["per_query"][qid] == pytest.approx(figures, abs=TOLERANCE)


@pytest.mark.parametrize("with_id", [True, False], ids=["id", "index"])
def test_a_batch_jsonl_run_equals_the_trec_run(cli: RunCli, tmp_path: Path, with_id: bool) -> None:
    """Results with an id are named by it; without (no --id-field), by their index."""
    qrels_text = TREC_QRELS if with_id else TREC_QRELS.replace(" d", " ")  # docids "1", "2", …
    qrels = write(tmp_path / "qrels", qrels_text)
    lines = [batch_line(qid, scores, with_id) for qid, scores in RUN_DICT.items()]
    lines.append({"id": "q7", "query": "?", "error": {"code": 4, "message": "failed"}})
    run = write(tmp_path / "run.jsonl", b"".join(orjson.dumps(line) + b"\n" for line in lines))
    result = cli("eval", "--qrels", qrels, "--run", run, "--at", "1,3", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["metrics"] == pytest.approx(expected_mean([1, 3]))
    assert "1 query failed in the batch run" in result.stderr


def test_per_query_and_the_json_shape(cli: RunCli, tmp_path: Path) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    run = write(tmp_path / "run.trec", TREC_RUN)
    result = cli("eval", "--qrels", qrels, "--run", run, "--at", "5,1", "--per-query")
    record = orjson.loads(result.stdout)
    assert list(record) == ["queries", "at", "metrics", "not_in_run", "not_in_qrels", "per_query"]
    assert record["at"] == [1, 5]
    names = ["ndcg@1", "ndcg@5", "mrr@1", "mrr@5", "recall@1", "recall@5", "p@1", "p@5", "map"]
    assert list(record["metrics"]) == names
    assert list(record["per_query"]) == ["q1", "q2"]
    assert list(record["per_query"]["q2"]) == names
    assert record["per_query"]["q2"]["mrr@5"] == 0.5
    assert record["per_query"]["q2"]["p@1"] == 0.0


def test_a_table_on_a_terminal(cli: RunCli, tmp_path: Path) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    run = write(tmp_path / "run.trec", TREC_RUN)
    result = cli(
        "eval", "--qrels", qrels, "--run", run, "--per-query", stdout_tty=True, no_color=True
    )
    assert result.exit_code == 0, result.stderr
    lines = result.text.splitlines()
    assert lines[0].split() == ["mean,", "2", "queries", "@10"]
    mean = expected_mean([10])
    assert lines[1].split() == ["nDCG", f"{mean['ndcg@10']:.4f}"]
    assert any(line.split()[:1] == ["q2"] for line in lines)
    assert not any(line != line.rstrip() for line in lines)


def test_the_gate(cli: RunCli, tmp_path: Path) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    run = write(tmp_path / "run.trec", TREC_RUN)
    mean = expected_mean([10])
    base = ("eval", "--qrels", qrels, "--run", run)
    passed = cli(*base, "--min-ndcg", "0.5", "--min-mrr", "0.5", "--min-recall", "1")
    assert passed.exit_code == 0, passed.stderr
    failed = cli(*base, "--min-ndcg", "0.9", "--min-mrr", "0.5")
    assert failed.exit_code == 1
    assert orjson.loads(failed.stdout)["metrics"] == pytest.approx(mean)  # figures still out
    assert f"ndcg@10 {mean['ndcg@10']:.4f} is below --min-ndcg 0.9" in failed.stderr
    assert "mrr" not in failed.stderr
    # the gate checks the largest k of --at
    low_k = cli(*base, "--at", "1", "--min-mrr", "0.1")
    assert low_k.exit_code == 1
    assert "mrr@1 0.0000 is below --min-mrr 0.1" in low_k.stderr
    assert cli(*base, "--at", "1,3", "--min-mrr", "0.5").exit_code == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--min-ndcg", "nan"),
        ("--min-mrr", "inf"),
        ("--min-recall", "1.5"),
        ("--min-ndcg", "-0.1"),
        ("--at", "0"),
        ("--at", "1,x"),
        ("--at", ""),
    ],
)
def test_bad_options_are_usage_errors(cli: RunCli, tmp_path: Path, option: str, value: str) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    run = write(tmp_path / "run.trec", TREC_RUN)
    result = cli("eval", "--qrels", qrels, "--run", run, option, value)
    assert result.exit_code == 2
    assert f"rerank: error: {option}" in result.stderr
    assert result.stdout == b""


@pytest.mark.parametrize(
    ("which", "text", "message"),
    [
        ("qrels", "q1 0 d1 1\nq1 0 d2\n", "qrels:2: expected 4 fields"),
        ("qrels", "q1 0 d1 x\n", "qrels:1: relevance must be a whole number, got 'x'"),
        ("qrels", "q1 d1\n", "qrels:1: not a qrels line"),
        ("qrels", "q1 0 d1 1\nq1 0 d1 0\n", "qrels:2: 'd1' judged twice for query 'q1'"),
        ("qrels", "", "qrels: no judgements"),
        ("run", "q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2\n", "run:2: not a TREC run line"),
        ("run", "q1 Q0 d1 1 high t\n", "run:1: the score must be a finite number"),
        ("run", "q1 Q0 d1 1 nan t\n", "run:1: the score must be a finite number"),
        ("run", "q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", "run:2: 'd1' ranked twice"),
        ("run", '{"id": "q1", "results": []}\n{"id": \n', "run:2: invalid JSON"),
        ("run", '{"id": "q1", "results": [{"rank": 1}]}\n', "run:1: result 1 has no numeric"),
        (
            "run",
            '{"id": "q1", "results": [{"score": 1, "index": 0}, {"score": 1, "id": "a"}]}\n',
            "run:1: some results have an 'id' and some do not",
        ),
        ("run", "q9 Q0 d1 1 0.5 t\n", "run: no query of the run is in the qrels"),
    ],
)
def test_bad_input_is_file_line_and_exit_2(
    cli: RunCli, tmp_path: Path, which: str, text: str, message: str
) -> None:
    files = {"qrels": TREC_QRELS, "run": TREC_RUN, which: text}
    qrels = write(tmp_path / "qrels", files["qrels"])
    run = write(tmp_path / "run", files["run"])
    result = cli("eval", "--qrels", qrels, "--run", run)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"rerank: error: {tmp_path}/{message}"), result.stderr
    assert result.stdout == b""


def test_stdin_for_one_of_them(cli: RunCli, tmp_path: Path) -> None:
    qrels = write(tmp_path / "qrels", TREC_QRELS)
    result = cli("eval", "--qrels", qrels, "--run", "-", stdin=TREC_RUN.encode())
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["metrics"] == pytest.approx(expected_mean([10]))
    both = cli("eval", "--qrels", "-", "--run", "-")
    assert both.exit_code == 2


def test_eval_is_a_command_and_its_typos_are_refused(cli: RunCli) -> None:
    """Adding ``eval`` makes ``evla``, ``evals``, ``val`` and also the word ``veal`` (two
    neighbours swapped) refused as one-word queries; ``evil`` and ``oval`` (a changed letter in
    a short name) still rank; ``rerank -- eval …`` ranks the query "eval"."""
    from rerank_cli.cli import near_subcommand

    for word in ("evla", "evals", "val", "veal", "Eval"):
        assert near_subcommand(word) == "eval", word
    for word in ("evil", "oval"):
        assert near_subcommand(word) is None, word
    refused = cli("veal", "veal stew", "bananas", "--engine", "lexical")
    assert refused.exit_code == 2
    assert "did you mean 'eval'?" in refused.stderr
    ranked = cli("--engine", "lexical", "--", "eval", "how eval works", "bananas")
    assert ranked.exit_code == 0, ranked.stderr
    assert ranked.records()[0]["text"] == "how eval works"
