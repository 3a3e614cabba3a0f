"""Pipeline: dedup, best-chunk folding, ranking order and filters."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.core.documents import Chunk, Document, Result
from rerank_cli.core.pipeline import Filters, fold, plan, rank, score_documents
from rerank_cli.engines.interface import ScoreCallback, Stats
from rerank_cli.writers import WriteOptions
from rerank_cli.writers.text import write_json, write_jsonl


class LengthEngine:
    """Scores a text by its length; records what it was asked."""

    name = "length"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        self.calls.append(list(texts))
        return [float(len(t)) for t in texts]


def documents(*texts: str) -> list[Document]:
    return [Document(text=t, raw=t.encode(), index=i) for i, t in enumerate(texts)]


def test_identical_texts_are_scored_once_and_every_record_is_kept() -> None:
    engine = LengthEngine()
    stats = Stats()
    docs = documents("aa", "b", "aa", "ccc", "b")
    results = asyncio.run(score_documents("q", docs, engine, stats))
    assert engine.calls == [["aa", "b", "ccc"]]
    assert [r.score for r in results] == [2.0, 1.0, 2.0, 3.0, 1.0]
    assert (stats.texts, stats.unique) == (5, 3)


def test_best_chunk_wins() -> None:
    def split(doc: Document) -> list[tuple[Chunk | None, str]]:
        parts = doc.text.split("|")
        spans, start = [], 0
        for number, part in enumerate(parts):
            spans.append((Chunk(number, start, start + len(part)), part))
            start += len(part) + 1
        return spans

    results = asyncio.run(
        score_documents("q", documents("a|bbbb|cc", "ddd"), LengthEngine(), Stats(), split)
    )
    assert results[0].score == 4.0
    assert results[0].chunk == Chunk(1, 2, 6)
    assert results[0].chunks_scored == 3
    assert results[1].chunks_scored == 1


def test_rank_orders_by_score_then_input_order_and_filters_after() -> None:
    results = asyncio.run(
        score_documents("q", documents("bb", "a", "cc", "d"), LengthEngine(), Stats())
    )
    ranked = rank(results)
    assert [(r.rank, r.document.text) for r in ranked] == [(1, "bb"), (2, "cc"), (3, "a"), (4, "d")]
    assert [r.rank for r in rank(results, Filters(top_k=3, min_score=1.5))] == [1, 2]
    assert [r.rank for r in rank(results, Filters(top_k=1))] == [1]


@given(st.lists(st.sampled_from(["a", "b", "c", "", "a b"]), max_size=30))
def test_the_whole_document_plan_equals_the_general_one(texts: list[str]) -> None:
    docs = documents(*texts)
    fast = plan(docs)  # the whole-document shortcut
    general = plan(docs, lambda d: ((None, d.text),))
    assert (fast.texts, fast.units) == (general.texts, general.units)
    assert fast.whole and not general.whole
    scores = [float(len(t)) for t in fast.texts]
    folded = [(r.document.index, r.score, r.chunk) for r in fold(fast, scores)]
    assert folded == [(r.document.index, r.score, r.chunk) for r in fold(general, scores)]


@given(st.lists(st.integers(0, 3), max_size=30), st.randoms(use_true_random=False))
def test_rank_breaks_ties_by_input_order_whatever_order_it_is_given(
    scores: list[int], shuffler: random.Random
) -> None:
    results = [
        Result(0, float(s), d) for s, d in zip(scores, documents(*"x" * len(scores)), strict=True)
    ]
    shuffled = results[:]
    shuffler.shuffle(shuffled)
    ranked = rank(shuffled)
    expected = sorted(results, key=lambda r: (-r.score, r.document.index))
    assert [r.document.index for r in ranked] == [r.document.index for r in expected]
    assert [r.rank for r in ranked] == list(range(1, len(scores) + 1))


@given(
    st.lists(st.integers(0, 4), max_size=30),
    st.one_of(st.none(), st.integers(0, 5)),
    st.one_of(st.none(), st.integers(0, 4)),
)
def test_the_ranking_knows_its_results_in_input_order_and_writes_the_same_either_way(
    scores: list[int], top_k: int | None, min_score: int | None
) -> None:
    docs = documents(*(f"text {i}" for i in range(len(scores))))
    results = [Result(0, float(s), d) for s, d in zip(scores, docs, strict=True)]
    ranked = rank(results, Filters(top_k=top_k, min_score=min_score))
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    assert list(ranked.by_input) == sorted(ranked, key=lambda r: r.document.index)
    for write in (write_jsonl, write_json):
        through_input, plainly = io.BytesIO(), io.BytesIO()
        write(ranked, through_input, WriteOptions())
        write(list(ranked), plainly, WriteOptions())  # a plain list: built in rank order
        assert through_input.getvalue() == plainly.getvalue()


def test_empty_plan() -> None:
    assert plan([]).texts == []


@given(st.lists(st.text(max_size=8), max_size=30))
def test_ranking_is_a_permutation_of_the_input(texts: list[str]) -> None:
    ranked = rank(asyncio.run(score_documents("q", documents(*texts), LengthEngine(), Stats())))
    assert sorted(r.document.index for r in ranked) == list(range(len(texts)))
    assert [r.rank for r in ranked] == list(range(1, len(texts) + 1))
    keys = [(-r.score, r.document.index) for r in ranked]
    assert keys == sorted(keys)
