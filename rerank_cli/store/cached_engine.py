"""An engine in front of another that answers from the score cache and sends only the misses.

Each batch the inner engine reports through ``on_scores`` is written at once, in its own
transaction, so an interrupted run keeps everything already paid for. Only for pointwise
engines (a text's score independent of the other texts): the hosted API, not BM25.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import TYPE_CHECKING, cast

from rerank_cli.engines.interface import (
    Engine,
    ScoreCallback,
    Stats,
    StreamingEngine,
    TextFeed,
    streaming,
)
from rerank_cli.store.score_cache import (
    CACHE_MODES,
    PAGE_CACHE_KB,
    WRITING_CACHE_KB,
    CacheMode,
    Key,
    Scope,
    ScoreCache,
    make_keys,
    question_id,
)

if TYPE_CHECKING:
    import asyncio


class CachedEngine:
    def __init__(
        self,
        inner: Engine,
        cache: ScoreCache | None,
        scope: Scope,
        *,
        mode: CacheMode = "normal",
        ttl_days: float | None = None,
        stats: Stats | None = None,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {', '.join(CACHE_MODES)}")
        if ttl_days is not None and not ttl_days >= 0:
            raise ValueError("the cache TTL must be 0 days or more")
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.scope = scope
        self.mode = mode
        self.ttl_days = ttl_days
        self.stats = stats or Stats()
        # This engine's totals over every score() call: what `rerank cache stats` shows.
        self._hits = self._misses = self._sent = 0
        # The last lookup, for score() to reuse after pending() (a budget check, or the
        # question whether anything will be sent at all): (query, texts, keys, scores). No
        # keys: the question was never asked, so nothing was hashed or looked up.
        self._looked_up: tuple[str, Sequence[str], list[Key] | None, list[float | None]] | None = (
            None
        )

    def _lookup(
        self, query: str, texts: Sequence[str]
    ) -> tuple[list[Key] | None, list[float | None]]:
        """Keys and cached scores (None: a miss) of ``texts``, or the ones pending() found for
        this very query and list. Texts are hashed here only to be looked up: a question never
        asked has nothing to find, and --refresh reads nothing (score() hashes them while the
        first requests are out)."""
        memo = self._looked_up
        if memo is not None and memo[0] == query and memo[1] is texts:
            return memo[2], memo[3]
        cache = self.cache
        keys: list[Key] | None = None
        found: list[float | None] = [None] * len(texts)
        if (
            self.mode == "normal"
            and cache is not None
            and cache.may_have(question_id(self.scope, query))
        ):
            keys = make_keys(self.scope, query, texts)
            found = cache.lookup(keys, self.ttl_days)
        self._looked_up = (query, texts, keys, found)
        return keys, found

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        cache = self.cache
        if cache is None or self.mode == "off" or not texts:
            return await self.inner.score(query, texts, on_scores)

        keys, found = self._lookup(query, texts)
        self._looked_up = None  # used once: a later call looks again
        unique, copies = _distinct(texts)
        cached = found if not copies else [found[p] for p in unique]
        hits: Sequence[int]
        misses: list[int] = []
        if not copies and None not in cached:  # a rerun: everything is cached
            scores = cast("list[float]", cached)
            hits = range(len(texts))
        else:
            scores = [0.0] * len(texts)
            hits = []
            for position, value in zip(unique, cached, strict=True):
                if value is None:
                    misses.append(position)
                else:
                    scores[position] = value
                    hits.append(position)
        self._count(hits=len(hits), misses=len(misses))

        def report(positions: Sequence[int], values: Sequence[float]) -> None:
            if on_scores is None:
                return
            if copies:
                extra = [
                    (copy, value)
                    for position, value in zip(positions, values, strict=True)
                    for copy in copies.get(position, ())
                ]
                positions = [*positions, *(copy for copy, _ in extra)]
                values = [*values, *(value for _, value in extra)]
            on_scores(positions, values)

        if hits:
            report(hits, scores if len(hits) == len(scores) else [scores[p] for p in hits])
        if not misses:
            self._record()
            return _fill_copies(scores, copies)

        written = [False] * len(misses)
        # Batches are written by one thread of their own, in order, each as soon as it lands:
        # a SQLite commit (~1 ms) on the event loop would hold up every request in flight.
        # (Not the hashing: on that thread it holds the GIL just when the loop wants it.)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank-cache")
        stored: list[Future[None]] = []
        question = question_id(self.scope, query)
        hashed: list[Key | None] = list(keys) if keys is not None else [None] * len(texts)
        hashing = None if keys is not None else _hash_meanwhile(self.scope, query, texts, hashed)

        def landed(batch: Sequence[int], values: Sequence[float]) -> None:
            positions = [misses[i] for i in batch]
            known = [hashed[p] for p in positions]
            batch_keys = (
                make_keys(self.scope, query, [texts[p] for p in positions])
                if None in known  # ahead of the background hashing
                else cast("list[Key]", known)
            )
            stored.append(writer.submit(cache.store, batch_keys, list(values), question))
            for i in batch:
                written[i] = True
            self._sent += len(positions)
            report(positions, values)

        try:
            fresh = await self.inner.score(query, [texts[p] for p in misses], landed)
            # An engine that did not report every batch: store and report the rest now.
            late = [i for i, done in enumerate(written) if not done]
            if late:
                landed(late, [fresh[i] for i in late])
        finally:
            if hashing is not None:
                hashing.cancel()
            writer.shutdown(wait=True)  # everything paid for is stored before we go on
            self._record()
        for write in stored:
            write.result()  # store() handles SQLite's errors; anything else is a bug: say so
        for position, value in zip(misses, fresh, strict=True):
            scores[position] = value
        return _fill_copies(scores, copies)

    async def score_feed(
        self, query: str, feed: TextFeed, on_scores: ScoreCallback | None = None
    ) -> Sequence[float]:
        """:meth:`score` for texts as they arrive (distinct texts: the pipeline dedups): each
        group that arrives is looked up in one statement (when this question was ever asked),
        and what the cache does not answer goes on to the inner engine's feed at once, so
        its batches leave while the input is still being read. Each landed batch is stored as
        :meth:`score` stores it."""
        import asyncio

        inner = streaming(self.inner)
        cache = self.cache
        if cache is None or self.mode == "off":
            return await inner.score_feed(query, feed, on_scores)
        scope, ttl_days = self.scope, self.ttl_days
        question = question_id(scope, query)
        if not (self.mode == "normal" and cache.may_have(question)):
            return await self._send_all(inner, query, feed, on_scores, question)
        scores: array[float] = array("d")
        to_send = TextFeed()
        sending: list[str] = cast("list[str]", to_send.texts)
        sent_from = array("q")  # the position in ``feed`` of each text sent
        taken = 0
        ended = asyncio.Event()  # the feed closed, or something failed
        failure: list[BaseException] = []
        engine: asyncio.Future[Sequence[float]] | None = None
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank-cache")
        stored: deque[Future[None]] = deque()

        def landed(batch: Sequence[int], values: Sequence[float]) -> None:
            positions = [sent_from[i] for i in batch]
            keys = make_keys(scope, query, [sending[i] for i in batch])
            while stored and stored[0].done():  # thousands of batches: keep only those out
                stored.popleft().result()
            stored.append(writer.submit(cache.store, keys, list(values), question))
            self._sent += len(positions)
            for position, value in zip(positions, values, strict=True):
                scores[position] = value
            if on_scores is not None:
                on_scores(positions, values)

        def engine_done(task: asyncio.Future[Sequence[float]]) -> None:
            if not task.cancelled() and task.exception() is not None:
                ended.set()  # the run fails now, not when the input ends

        def more() -> None:
            nonlocal taken, engine
            try:
                end = feed.available
                if end > taken:
                    group = feed.texts[taken:end]
                    scores.extend(repeat(0.0, end - taken))
                    found = cache.lookup(make_keys(scope, query, group), ttl_days)
                    hits: list[int] = []
                    for position, text, value in zip(range(taken, end), group, found, strict=True):
                        if value is None:
                            sent_from.append(position)
                            sending.append(text)
                        else:
                            scores[position] = value
                            hits.append(position)
                    self._count(hits=len(hits), misses=len(group) - len(hits))
                    taken = end
                    if hits and on_scores is not None:
                        on_scores(hits, [scores[p] for p in hits])
                    to_send.advance(len(sending))
                    if engine is None and sending:
                        engine = asyncio.ensure_future(inner.score_feed(query, to_send, landed))
                        engine.add_done_callback(engine_done)
                if feed.closed:
                    to_send.close()
                    ended.set()
            except BaseException as error:  # a callback's error would go to the loop's log
                failure.append(error)
                ended.set()

        feed.listen(more)
        try:
            more()
            await ended.wait()
            if failure:
                raise failure[0]
            if engine is not None:
                await engine
        finally:
            if engine is not None and not engine.done():
                engine.cancel()
                await asyncio.gather(engine, return_exceptions=True)
            writer.shutdown(wait=True)  # everything paid for is stored before we go on
            self._record()
        for write in stored:
            write.result()
        return scores

    async def _send_all(
        self,
        inner: StreamingEngine,
        query: str,
        feed: TextFeed,
        on_scores: ScoreCallback | None,
        question: int,
    ) -> Sequence[float]:
        """:meth:`score_feed` when the cache has nothing to look up (a question never asked,
        or --refresh): the feed goes to the inner engine as it is, and each landed batch is
        stored."""
        cache = self.cache
        assert cache is not None
        import threading

        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank-cache")
        texts = feed.texts
        scope = self.scope
        # Scores landed and not yet stored: positions and values, 12 bytes a score. The writer
        # stores what is waiting, then what landed meanwhile, together, until nothing waits:
        # it keeps up however fast answers come, and each batch is stored soon after it lands.
        waiting: tuple[array[int], array[float]] = (array("I"), array("d"))
        busy = False
        lock = threading.Lock()
        runs: deque[Future[None]] = deque()

        def drain() -> None:  # on the writer thread
            nonlocal waiting, busy
            while True:
                with lock:
                    positions, values = waiting
                    if not positions:
                        busy = False
                        return
                    if len(positions) <= WRITE_MOST:
                        waiting = (array("I"), array("d"))
                    else:  # a transaction's rows and pages are held until it commits
                        waiting = (positions[WRITE_MOST:], values[WRITE_MOST:])
                        positions, values = positions[:WRITE_MOST], values[:WRITE_MOST]
                keys = make_keys(scope, query, [texts[p] for p in positions])
                cache.store(keys, values, question)

        def landed(batch: Sequence[int], values: Sequence[float]) -> None:
            nonlocal busy
            with lock:
                waiting[0].extend(batch)
                waiting[1].extend(values)
                start, busy = not busy, True
            if start:
                while runs and runs[0].done():
                    runs.popleft().result()  # store() handles SQLite's errors; else a bug
                runs.append(writer.submit(drain))
            self._sent += len(batch)
            if on_scores is not None:
                on_scores(batch, values)

        cache.page_cache(WRITING_CACHE_KB)  # only writes: no page is read again
        try:
            scores = await inner.score_feed(query, feed, landed)
        finally:
            self._count(hits=0, misses=feed.available)
            writer.shutdown(wait=True)  # everything paid for is stored before we go on
            cache.page_cache(PAGE_CACHE_KB)
            self._record()
        for run in runs:
            run.result()
        return scores

    def requests(self, query: str, texts: Sequence[str]) -> int:
        return self.inner.requests(query, texts)

    def pending(self, query: str, texts: Sequence[str]) -> list[int]:
        """Positions of ``texts`` a run would send (the cache does not answer them), without
        scoring or recording anything: for --dry-run and the budgets."""
        if self.cache is None or self.mode != "normal" or not texts:
            return list(range(len(texts)))
        _, found = self._lookup(query, texts)
        return [position for position, value in enumerate(found) if value is None]

    def _count(self, hits: int, misses: int) -> None:
        self._hits += hits
        self._misses += misses
        self.stats.cache_hits += hits
        self.stats.cache_misses += misses

    def _record(self) -> None:
        if self.cache is not None:
            self.cache.record_run(self._hits, self._misses, self._sent)


WRITE_MOST = 1024  # scores stored in one transaction at most, while streaming
HASH_CHUNK = 256  # texts hashed between two turns of the event loop: ~0.2 ms


def _hash_meanwhile(
    scope: Scope, query: str, texts: Sequence[str], into: list[Key | None]
) -> asyncio.Task[None]:
    """Fill ``into`` with the keys of ``texts``, a chunk per turn of the event loop: the
    hashing happens while the first requests are out, not before they leave."""

    import asyncio  # here: a run the cache answers entirely has no event loop

    async def run() -> None:
        for start in range(0, len(texts), HASH_CHUNK):
            await asyncio.sleep(0)
            end = start + HASH_CHUNK
            into[start:end] = make_keys(scope, query, texts[start:end])

    return asyncio.ensure_future(run())


def _distinct(texts: Sequence[str]) -> tuple[Sequence[int], dict[int, list[int]]]:
    """Positions of the first of each text, and the later positions repeating it. The pipeline
    already dedups, so the usual answer is every position and no copies."""
    if len(set(texts)) == len(texts):
        return range(len(texts)), {}
    first: dict[str, int] = {}
    copies: dict[int, list[int]] = {}
    for position, text in enumerate(texts):
        owner = first.setdefault(text, position)
        if owner != position:
            copies.setdefault(owner, []).append(position)
    return list(first.values()), copies


def _fill_copies(scores: list[float], copies: dict[int, list[int]]) -> list[float]:
    for owner, positions in copies.items():
        for position in positions:
            scores[position] = scores[owner]
    return scores
