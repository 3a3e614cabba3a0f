"""Ranking metrics with trec_eval's conventions (trec_eval is the spec; tests/test_eval.py
proves every figure equal to pytrec_eval's to 1e-6).

- A run's documents are ordered by score descending, ties by docid descending (byte order) —
  trec_eval's order; the ranks written in a run are ignored, as trec_eval ignores them. Scores
  are compared as trec_eval holds them, in single precision (a C ``float``): two scores equal to
  about 7 significant digits (0.99999994 and 0.99999997) are a tie.
- Relevant means a judgement ≥ 1. Unjudged documents are not relevant. nDCG's gain is the
  judgement itself (a negative one gains 0), discounted by log2(rank + 1); the ideal ranking is
  the query's judgements sorted, best first.
- nDCG@k = DCG@k / ideal DCG@k (0 when the ideal is 0); MRR@k = 1 / the rank of the first
  relevant document if it is within k, else 0; Recall@k = relevant in the top k / relevant
  judged (0 when none is); P@k = relevant in the top k / k (k even when fewer are ranked);
  MAP = the mean over the relevant judged documents of the precision at each one's rank (0 at
  ranks never reached), over the whole ranking.
- The mean is over the queries in both the run and the qrels (trec_eval without ``-c``): a
  query judged but absent from the run counts nowhere, nor does a query of the run never judged.
  A judged query with no relevant document is averaged in, at 0.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Judgements = Mapping[str, int]  # docid → relevance, for one query
Scores = Mapping[str, float]  # docid → score, for one query
Qrels = Mapping[str, Judgements]
Run = Mapping[str, Scores]

AT_METRICS = ("ndcg", "mrr", "recall", "p")  # each at every k of --at
RELEVANT = 1  # trec_eval's default relevance level


def metric_names(at: Sequence[int]) -> list[str]:
    """The names of the figures for ``at``, in output order: ``ndcg@1, ndcg@10, mrr@1, …,
    map``."""
    return [f"{metric}@{k}" for metric in AT_METRICS for k in at] + ["map"]


def ranking(scores: Scores) -> list[str]:
    """The docids in trec_eval's order: score (in single precision) descending, then docid
    descending."""
    return sorted(scores, key=lambda docid: (single(scores[docid]), docid), reverse=True)


def single(score: float) -> float:
    """``score`` rounded to a C ``float``, as trec_eval stores a run's scores (past its range:
    an infinity, as C's conversion gives)."""
    try:
        return float(struct.unpack("f", struct.pack("f", score))[0])
    except OverflowError:
        return math.copysign(math.inf, score)


def query_metrics(judged: Judgements, scores: Scores, at: Sequence[int]) -> dict[str, float]:
    """Every figure of :func:`metric_names` for one query."""
    ranked = ranking(scores)
    relevant = [judged.get(docid, 0) >= RELEVANT for docid in ranked]
    gains = [max(judged.get(docid, 0), 0) for docid in ranked]
    total_relevant = sum(1 for rel in judged.values() if rel >= RELEVANT)
    ideal = sorted((rel for rel in judged.values() if rel > 0), reverse=True)
    first = next((rank for rank, hit in enumerate(relevant, 1) if hit), None)
    figures: dict[str, float] = {}
    for k in at:
        ideal_dcg = _dcg(ideal[:k])
        figures[f"ndcg@{k}"] = _dcg(gains[:k]) / ideal_dcg if ideal_dcg > 0 else 0.0
    for k in at:
        figures[f"mrr@{k}"] = 1.0 / first if first is not None and first <= k else 0.0
    for k in at:
        hits = sum(relevant[:k])
        figures[f"recall@{k}"] = hits / total_relevant if total_relevant else 0.0
    for k in at:
        figures[f"p@{k}"] = sum(relevant[:k]) / k
    precision_sum, hits = 0.0, 0
    for rank, hit in enumerate(relevant, 1):
        if hit:
            hits += 1
            precision_sum += hits / rank
    figures["map"] = precision_sum / total_relevant if total_relevant else 0.0
    return figures


def _dcg(gains: Iterable[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, 1) if gain)


@dataclass
class Evaluation:
    at: list[int]
    per_query: dict[str, dict[str, float]]  # in the run's order of queries
    mean: dict[str, float]
    not_in_run: list[str] = field(default_factory=list)  # judged, never ranked: not averaged
    not_judged: list[str] = field(default_factory=list)  # ranked, never judged: not averaged

    @property
    def queries(self) -> int:
        return len(self.per_query)


def evaluate(qrels: Qrels, run: Run, at: Sequence[int]) -> Evaluation:
    """Every query of both ``run`` and ``qrels``, and their mean (0.0 for every figure when
    they share no query; the caller refuses that)."""
    at = sorted(set(at))
    per_query = {
        qid: query_metrics(qrels[qid], scores, at)
        for qid, scores in run.items()
        if qrels.get(qid)  # a query of the qrels has a judgement (a qrels file gives one)
    }
    names = metric_names(at)
    count = len(per_query)
    mean = {
        name: (math.fsum(f[name] for f in per_query.values()) / count if count else 0.0)
        for name in names
    }
    return Evaluation(
        at=at,
        per_query=per_query,
        mean=mean,
        not_in_run=[qid for qid in qrels if qrels[qid] and qid not in run],
        not_judged=[qid for qid in run if not qrels.get(qid)],
    )


# -- comparing two runs: a paired randomization test

PERMUTATIONS = 10_000  # sign flips sampled when 2^n exceeds them (else all 2^n, exactly)
SEED = 20070806  # fixed: the same figures give the same p-value, every time
_TOLERANCE = 1e-9  # relative: sums in another order that differ only by rounding are equal


def randomization_test(
    first: Sequence[float],
    second: Sequence[float],
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> float:
    """The two-sided p-value of Fisher's paired randomization (permutation) test, which
    Smucker, Allan and Carterette (CIKM 2007) recommend for IR: under the null hypothesis each
    query's two figures are exchangeable, so each difference ``first[i] - second[i]`` keeps or
    flips its sign with equal chance. The p-value is the share of the sign assignments whose
    mean difference is at least as far from 0 as the observed one. With n queries that differ,
    all 2^n assignments are enumerated when 2^n ≤ ``permutations`` (an exact p-value);
    otherwise ``permutations`` random ones are drawn from a generator seeded with ``seed`` and
    p = (hits + 1) / (permutations + 1), counting the observed assignment. Queries whose
    figures are equal change nothing under a flip and are left out of n. Equal runs: p = 1."""
    if len(first) != len(second):
        raise ValueError("paired figures: the two sequences must have one length")
    differences = [a - b for a, b in zip(first, second, strict=True) if a != b]
    n = len(differences)
    if n == 0:
        return 1.0
    # Sums by bytes of the sign mask: table[j][m] is the sum of chunk j's differences with the
    # signs of mask m (bit set: flipped), so one assignment costs n / 8 look-ups.
    tables = []
    for start in range(0, n, 8):
        chunk = differences[start : start + 8]
        table = [0.0] * (1 << len(chunk))
        for mask in range(1 << len(chunk)):
            table[mask] = math.fsum(
                -value if mask >> bit & 1 else value for bit, value in enumerate(chunk)
            )
        tables.append(table)
    size = len(tables)

    def total(assignment: int) -> float:
        raw = assignment.to_bytes(size, "little")
        return abs(sum(tables[j][raw[j]] for j in range(size)))

    observed = total(0)
    bar = observed - _TOLERANCE * max(1.0, observed)
    if (1 << n) <= permutations:
        hits = sum(1 for assignment in range(1 << n) if total(assignment) >= bar)
        return hits / (1 << n)
    import random

    rng = random.Random(seed)
    hits = sum(1 for _ in range(permutations) if total(rng.getrandbits(n)) >= bar)
    return (hits + 1) / (permutations + 1)


@dataclass
class Comparison:
    """A run against a baseline over the queries both evaluated: each one's mean, the delta
    (run − baseline) and the randomization test's two-sided p-value, per metric."""

    queries: list[str]
    run: dict[str, float]
    baseline: dict[str, float]
    delta: dict[str, float]
    p_value: dict[str, float]
    # qid → the baseline's figures, for the paired queries (the run's are the evaluation's).
    baseline_per_query: dict[str, dict[str, float]] = field(default_factory=dict)


TEST_NAME = "paired randomization test (Fisher), two-sided"


def compare(evaluation: Evaluation, baseline: Evaluation) -> Comparison:
    """Pair the queries evaluated in both (the run's order) and test every metric."""
    queries = [qid for qid in evaluation.per_query if qid in baseline.per_query]
    count = len(queries)
    run_mean: dict[str, float] = {}
    base_mean: dict[str, float] = {}
    delta: dict[str, float] = {}
    p_value: dict[str, float] = {}
    for name in metric_names(evaluation.at):
        mine = [evaluation.per_query[qid][name] for qid in queries]
        theirs = [baseline.per_query[qid][name] for qid in queries]
        run_mean[name] = math.fsum(mine) / count if count else 0.0
        base_mean[name] = math.fsum(theirs) / count if count else 0.0
        delta[name] = run_mean[name] - base_mean[name]
        p_value[name] = randomization_test(mine, theirs)
    paired = {qid: baseline.per_query[qid] for qid in queries}
    return Comparison(queries, run_mean, base_mean, delta, p_value, paired)
