"""An offline BM25 ranker: no key, no network. Scores are normalised to 0..1 by dividing by the
largest score any document could reach for this query in this collection, so a score means the
same thing whatever the other documents scored."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from rerank_cli.engines.interface import ScoreCallback, Stats

# Ideographic scripts have no spaces: each character is a token there.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")

K1 = 1.2
B = 0.75

# Words that match everything say nothing about relevance.
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "in",
    "is", "it", "of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "when",
    "where", "which", "who", "why", "will", "with",
})
# fmt: on
# Light suffix stripping, so "retried", "retries" and "retry" meet; longest suffix first.
_SUFFIXES = (("ies", "i"), ("ied", "i"), ("ing", ""), ("es", ""), ("ed", ""), ("s", ""), ("y", "i"))


def stem(word: str) -> str:
    if len(word) <= 3 or not word.isascii():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def tokenize(text: str) -> list[str]:
    return [stem(word) for word in _TOKEN.findall(text.lower()) if word not in STOPWORDS]


def bm25(query: str, texts: Sequence[str]) -> list[float]:
    docs = [Counter(tokenize(text)) for text in texts]
    terms = set(tokenize(query))
    if not docs or not terms:
        return [0.0] * len(docs)
    lengths = [sum(doc.values()) for doc in docs]
    average = sum(lengths) / len(docs) or 1.0
    n = len(docs)
    idf = {}
    for term in terms:
        df = sum(1 for doc in docs if term in doc)
        idf[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    ceiling = sum(idf.values()) * (K1 + 1.0)
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        norm = K1 * (1.0 - B + B * length / average)
        total = 0.0
        for term in terms:
            tf = doc.get(term, 0)
            if tf:
                total += idf[term] * tf * (K1 + 1.0) / (tf + norm)
        scores.append(total / ceiling)
    return scores


class LexicalEngine:
    name = "lexical"

    def __init__(self, settings: object = None, stats: Stats | None = None, **_: object) -> None:
        self.stats = stats or Stats()  # BM25 needs no settings and nothing from the session

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        scores = bm25(query, texts)
        self.stats.sent += len(texts)
        self.stats.batches += 1
        if on_scores is not None:
            on_scores(range(len(texts)), scores)
        return scores

    def requests(self, query: str, texts: Sequence[str]) -> int:
        return 0  # nothing leaves the machine
