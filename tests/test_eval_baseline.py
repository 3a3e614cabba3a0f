"""``rerank eval --baseline RUN``: the paired randomization test (core/metrics.py) and the
side-by-side comparison through the command."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import orjson
import pytest

from rerank_cli.core.metrics import TEST_NAME, compare, evaluate, randomization_test
from tests.conftest import RunCli


def test_identical_figures_give_p_one() -> None:
    figures = [0.1 * i for i in range(40)]
    assert randomization_test(figures, figures) == 1.0
    assert randomization_test([], []) == 1.0


def test_a_clearly_better_run_on_many_queries_gives_a_small_p() -> None:
    rng = random.Random(1)
    baseline = [rng.random() * 0.5 for _ in range(60)]
    better = [value + 0.2 + rng.random() * 0.1 for value in baseline]
    p = randomization_test(better, baseline)
    assert p < 0.001
    assert p == randomization_test(baseline, better)  # two-sided: symmetric


def test_the_p_value_is_deterministic() -> None:
    rng = random.Random(2)
    first = [rng.random() for _ in range(50)]
    second = [rng.random() for _ in range(50)]
    p = randomization_test(first, second)
    assert 0.0 < p <= 1.0
    assert all(randomization_test(first, second) == p for _ in range(3))


def exact_p(first: list[float], second: list[float]) -> float:
    """Every sign assignment, the plain way."""
    differences = [a - b for a, b in zip(first, second, strict=True)]
    observed = abs(sum(differences))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(differences)):
        total += 1
        hits += abs(sum(s * d for s, d in zip(signs, differences, strict=True))) >= observed - 1e-12
    return hits / total


def test_small_samples_are_enumerated_exactly() -> None:
    first = [0.5, 0.7, 0.2, 0.9, 1.0, 0.3, 0.8, 0.6, 0.4, 0.55]
    second = [0.4, 0.5, 0.25, 0.6, 0.9, 0.3, 0.7, 0.65, 0.1, 0.5]
    assert randomization_test(first, second) == pytest.approx(exact_p(first, second))
    # one query better, by any amount: half the assignments are at least as far from 0
    assert randomization_test([1.0], [0.0]) == 1.0
    assert randomization_test([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == pytest.approx(2 / 8)


def test_the_sampled_p_is_close_to_the_exact_one() -> None:
    rng = random.Random(3)
    first = [rng.random() for _ in range(16)]  # 2^16 > 10,000: sampled
    second = [value + rng.gauss(0.05, 0.2) for value in first]
    assert randomization_test(first, second) == pytest.approx(exact_p(first, second), abs=0.02)


def test_compare_pairs_the_queries_both_evaluate() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": {"a": 2.0, "x": 1.0}, "q2": {"b": 2.0, "x": 1.0}, "q3": {"c": 1.0}}
    baseline = {"q1": {"a": 1.0, "x": 2.0}, "q2": {"b": 2.0, "x": 1.0}}
    comparison = compare(evaluate(qrels, run, [1]), evaluate(qrels, baseline, [1]))
    assert comparison.queries == ["q1", "q2"]
    assert comparison.run["mrr@1"] == 1.0
    assert comparison.baseline["mrr@1"] == 0.5
    assert comparison.delta["mrr@1"] == 0.5
    assert comparison.p_value["mrr@1"] == 1.0  # one query differs: exactly 1


QRELS = "".join(f"q{q} 0 d{q}-{d} {int(d < 2)}\n" for q in range(30) for d in range(5))
# The baseline puts the relevant documents last, the run first.
BASELINE = "".join(f"q{q} Q0 d{q}-{d} {d + 1} {d} bm25\n" for q in range(30) for d in range(5))
RUN = "".join(f"q{q} Q0 d{q}-{d} {d + 1} {-d} rr\n" for q in range(30) for d in range(5))


def files(tmp_path: Path) -> tuple[str, str, str]:
    paths = []
    for name, text in (("qrels", QRELS), ("run.trec", RUN), ("bm25.trec", BASELINE)):
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    return paths[0], paths[1], paths[2]


def test_the_command_shows_both_the_delta_and_p(cli: RunCli, tmp_path: Path) -> None:
    qrels, run, baseline = files(tmp_path)
    result = cli("eval", "--qrels", qrels, "--run", run, "--baseline", baseline, "--at", "1,5")
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)
    compared = record["baseline"]
    assert compared["queries"] == 30
    assert compared["test"] == TEST_NAME
    assert compared["permutations"] == 10_000
    ndcg = compared["metrics"]["ndcg@1"]
    assert ndcg["run"] == 1.0 == record["metrics"]["ndcg@1"]
    assert ndcg["baseline"] == 0.0
    assert ndcg["delta"] == 1.0
    assert ndcg["p"] < 0.001
    assert compared["metrics"]["recall@5"] == {"run": 1.0, "baseline": 1.0, "delta": 0.0, "p": 1.0}
    again = cli("eval", "--qrels", qrels, "--run", run, "--baseline", baseline, "--at", "1,5")
    assert again.stdout == result.stdout  # a fixed seed
    same = cli("eval", "--qrels", qrels, "--run", run, "--baseline", run, "-o", "json")
    for figures in orjson.loads(same.stdout)["baseline"]["metrics"].values():
        assert figures["delta"] == 0.0
        assert figures["p"] == 1.0


def test_per_query_shows_the_baseline_figures_of_each_paired_query(
    cli: RunCli, tmp_path: Path
) -> None:
    qrels, run, baseline = files(tmp_path)
    result = cli("eval", "--qrels", qrels, "--run", run, "--baseline", baseline, "--per-query")
    assert result.exit_code == 0, result.stderr
    record = orjson.loads(result.stdout)
    on_its_own = cli("eval", "--qrels", qrels, "--run", baseline, "--per-query")
    assert record["baseline"]["per_query"] == orjson.loads(on_its_own.stdout)["per_query"]
    assert "per_query" not in orjson.loads(cli("eval", "--qrels", qrels, "--run", run,
        "--baseline", baseline).stdout)["baseline"]  # fmt: skip
    table = cli("eval", "--qrels", qrels, "--run", run, "--baseline", baseline, "--per-query",
        "-o", "table").stdout.decode()  # fmt: skip
    deltas = table.split("Δ vs baseline")[1].splitlines()[1:]
    assert len(deltas) == 30
    first = next(iter(record["metrics"]))  # the table's columns are the JSON's metrics
    change = record["per_query"]["q0"][first] - record["baseline"]["per_query"]["q0"][first]
    assert change > 0.4
    assert deltas[0].split()[:2] == ["q0", f"{change:+.4f}"]


def test_the_table_names_the_test(cli: RunCli, tmp_path: Path) -> None:
    qrels, run, baseline = files(tmp_path)
    result = cli("eval", "--qrels", qrels, "--run", run, "--baseline", baseline, "-o", "table")
    assert result.exit_code == 0, result.stderr
    text = result.stdout.decode()
    assert "vs baseline, 30 queries" in text
    assert "+0.7500" in text  # MRR@10: 1 against 1/4
    assert "paired randomization test (Fisher)" in text


def test_baseline_problems(cli: RunCli, tmp_path: Path) -> None:
    qrels, run, _ = files(tmp_path)
    other = tmp_path / "other.trec"
    other.write_text("z1 Q0 d 1 1.0 x\n")
    result = cli("eval", "--qrels", qrels, "--run", run, "--baseline", str(other))
    assert result.exit_code == 2
    assert "baseline" in result.stderr
    partial = tmp_path / "partial.trec"
    partial.write_text("".join(line + "\n" for line in BASELINE.splitlines()[:50]))
    result = cli("eval", "--qrels", qrels, "--run", run, "--baseline", str(partial))
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["baseline"]["queries"] == 10
    assert "20 queries of the run are not in the baseline" in result.stderr
    stdin = cli("eval", "--qrels", qrels, "--run", "-", "--baseline", "-")
    assert stdin.exit_code == 2
