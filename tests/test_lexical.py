"""The offline BM25 engine."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.engines.lexical import LexicalEngine, bm25, stem, tokenize


def test_tokenize_stems_drops_stopwords_and_splits_ideographs() -> None:
    assert tokenize("How are failed Requests retried?") == ["fail", "request", "retri"]
    assert tokenize("东京 is big") == ["东", "京", "big"]
    assert stem("retries") == stem("retried") == stem("retry")


def test_matching_document_ranks_first_and_scores_stay_in_0_1() -> None:
    scores = bm25("capital of France", ["Bananas are yellow.", "Paris is the capital of France."])
    assert scores[1] > scores[0] == 0.0
    assert all(0.0 <= s < 1.0 for s in scores)


@given(st.text(max_size=20), st.lists(st.text(max_size=40), max_size=20))
def test_scores_are_bounded_and_one_per_text(query: str, texts: list[str]) -> None:
    scores = asyncio.run(LexicalEngine().score(query, texts))
    assert len(scores) == len(texts)
    assert all(0.0 <= s < 1.0 for s in scores)
