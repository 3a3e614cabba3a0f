"""Rerun of fully cached documents: how long it takes and how many requests it makes (0).

The first run fills a fresh cache in a temporary directory through the real path (pipeline →
CachedEngine → store per batch); only the second run is timed, from opening the cache to the
last score, as a new process would do it."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rerank_cli.core import pipeline
from rerank_cli.core.documents import Document
from rerank_cli.engines.interface import ScoreCallback, Stats
from rerank_cli.store.cached_engine import CachedEngine
from rerank_cli.store.score_cache import Scope, ScoreCache

QUERY = "how do I rotate the signing keys"
SCOPE = Scope.for_api("https://gigarouter.ai/v1", "Qwen/Qwen3-Reranker-0.6B")


class CountingEngine:
    """A pointwise stand-in for the API: a score from the text's hash, one "request" a batch."""

    name = "counting"

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.requests = 0
        self.texts = 0

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        scores = [hashlib.md5(text.encode()).digest()[0] / 255 for text in texts]
        for start in range(0, len(texts), self.batch_size):
            batch = range(start, min(start + self.batch_size, len(texts)))
            self.requests += 1
            self.texts += len(batch)
            if on_scores is not None:
                on_scores(batch, [scores[i] for i in batch])
        return scores


def _documents(n: int) -> list[Document]:
    docs = []
    for i in range(n):
        text = f"{i}: rotate the signing keys every {i % 97} days; see runbook section {i % 13}"
        doc = Document(text=text, raw=text.encode() + b"\n")
        doc.index = i
        docs.append(doc)
    return docs


def _run(path: Path, documents: list[Document], engine: CountingEngine) -> None:
    stats = Stats(documents=len(documents))
    warnings: list[str] = []
    cache = ScoreCache.open(path, warnings.append)
    if cache is None or warnings:
        raise RuntimeError(f"cache unusable: {warnings}")
    with cache:
        cached = CachedEngine(engine, cache, SCOPE, stats=stats)
        asyncio.run(pipeline.score_documents(QUERY, documents, cached, stats))


def bench_cached_rerun(n: int = 100_000) -> tuple[float, int]:
    """(seconds, requests) of a rerun over ``n`` documents that are all in the cache."""
    documents = _documents(n)
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        path = Path(directory) / "scores.sqlite"
        # The first run's batch size only speeds up filling; the rerun sends nothing anyway.
        _run(path, documents, CountingEngine(batch_size=1000))
        engine = CountingEngine()
        started = time.perf_counter()
        _run(path, documents, engine)
        seconds = time.perf_counter() - started
    return seconds, engine.requests


if __name__ == "__main__":
    seconds, requests = bench_cached_rerun()
    print(f"cached rerun of 100,000 documents: {seconds:.3f} s, {requests} requests")
