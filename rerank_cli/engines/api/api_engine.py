"""The hosted-API engine: batches, runs them concurrently on one keep-alive client, splits any
batch the server finds too large, and reports each batch's scores as it lands."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Awaitable, Callable, MutableSequence, Sequence
from itertools import repeat
from typing import TYPE_CHECKING

from rerank_cli.engines.api.batching import Batcher, plan_batches
from rerank_cli.engines.api.protocol import Shape
from rerank_cli.engines.interface import ScoreCallback, Stats, TextFeed
from rerank_cli.errors import ApiRefused, RequestTooLarge
from rerank_cli.settings.schema import Settings

if TYPE_CHECKING:
    import httpx

    from rerank_cli.engines.api.client import RerankClient, Sleep


def _limits(settings: Settings, query: str) -> tuple[Shape, int, Callable[[str], int] | None]:
    """The request's shape, the documents a batch may hold (batch size capped by the
    provider's), and a document's tokens as sent when the provider limits tokens per request
    (query tokens count once per document, as Voyage counts them)."""
    profile = settings.profile
    shape = Shape.of(settings)
    size = min(settings.batch_size, profile.max_documents or settings.batch_size)
    if profile.max_tokens_per_request is None:
        return shape, size, None
    from rerank_cli.providers.tokens import tokenizer_for

    tokenizer = tokenizer_for(settings.model)
    sent_query, instruction_fields = shape.sent_query(query)
    per_query = tokenizer.count(sent_query) + sum(map(tokenizer.count, instruction_fields.values()))

    def tokens(text: str) -> int:
        return tokenizer.count(shape.sent_document(text)) + per_query

    return shape, size, tokens


def batches(settings: Settings, query: str, texts: Sequence[str]) -> list[list[int]]:
    """The requests a run makes: batch size capped by the provider's documents per request,
    the byte budget, and the provider's token budget per request (query tokens count once per
    document, as Voyage counts them). Tokens are those of the texts as sent: the query with
    its instruction (in it, or in a field), each document in its prompt in template mode."""
    profile = settings.profile
    shape, size, tokens = _limits(settings, query)
    overhead = shape.overhead(query)
    if tokens is None:
        # Usually the byte budget cannot bind: then batches are slices, with no cost per text.
        longest = max(map(len, texts), default=0)
        if overhead + size * shape.cost_bound(longest) <= settings.max_request_bytes:
            return [
                list(range(start, min(start + size, len(texts))))
                for start in range(0, len(texts), size)
            ]
    return plan_batches(
        texts,
        size,
        settings.max_request_bytes,
        overhead,
        shape.cost,
        tokens,
        profile.max_tokens_per_request,
    )


def batcher(settings: Settings, query: str) -> Batcher:
    """:func:`batches`, online: the same batches, each handed out as soon as it closes."""
    profile = settings.profile
    shape, size, tokens = _limits(settings, query)
    return Batcher(
        size,
        settings.max_request_bytes,
        shape.overhead(query),
        shape.cost,
        shape.cost_bound,
        tokens,
        profile.max_tokens_per_request,
    )


class ApiEngine:
    """Scores on the rerank API. In a session, every call shares the session's client
    (``connect`` opens it on first use): one pool of at most ``-j`` connections, kept alive
    across queries, so however many queries run at once, at most ``-j`` requests are in flight
    (a request waiting out a retry's backoff holds none) — fewer while the server rate-limits
    (the client's pacer, engines/api/pacing.py). Alone (tests), each call opens a client of its
    own."""

    name = "api"

    def __init__(
        self,
        settings: Settings,
        stats: Stats | None = None,
        *,
        connect: Callable[[], Awaitable[RerankClient]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,  # asyncio.sleep
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats or Stats()
        self._connect = connect
        self._transport = transport
        self._sleep = sleep
        self._notify = notify

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        return list(
            await self._on_client(lambda client: self._score(client, query, texts, on_scores))
        )

    async def _on_client(
        self, work: Callable[[RerankClient], Awaitable[Sequence[float]]]
    ) -> Sequence[float]:
        """``work`` on the session's client, or — alone (tests) — on a client of its own."""
        if self._connect is not None:
            return await work(await self._connect())
        # Imported here: a run the score cache answers entirely never needs them.
        import asyncio

        from rerank_cli.engines.api.client import RerankClient

        own = RerankClient(
            self.settings,
            self.stats,
            transport=self._transport,
            sleep=self._sleep or asyncio.sleep,
            notify=self._notify,
        )
        async with own:
            return await work(own)

    def requests(self, query: str, texts: Sequence[str]) -> int:
        return len(batches(self.settings, query, texts))

    async def score_feed(
        self, query: str, feed: TextFeed, on_scores: ScoreCallback | None = None
    ) -> Sequence[float]:
        """Score texts as they arrive: each batch is sent as soon as it closes (full, or the
        next text would not fit), by at most ``-j`` workers; the batches are those
        :meth:`score` would send for all the texts at once."""
        return await self._on_client(lambda client: self._score(client, query, feed, on_scores))

    async def _score(
        self,
        client: RerankClient,
        query: str,
        given: Sequence[str] | TextFeed,
        on_scores: ScoreCallback | None,
    ) -> MutableSequence[float]:
        import asyncio

        s = self.settings
        # Scores by position: a list for texts given at once, an array (8 bytes a score) for
        # a feed, which may be millions long.
        scores: MutableSequence[float] = [] if not isinstance(given, TextFeed) else array("d")
        ready: deque[Sequence[int] | None] = deque()
        if isinstance(given, TextFeed):
            feed = given
            texts = feed.texts
            cutter = batcher(s, query)
            workers_wanted = s.concurrency
        else:
            feed, texts, cutter = None, given, None
            ready.extend(batches(s, query, given))
            workers_wanted = min(s.concurrency, len(ready))
        scores.extend(repeat(0.0, len(texts) if feed is None else 0))
        wake = asyncio.Event()
        taken = 0  # texts handed to the batcher

        def more() -> None:
            nonlocal taken
            assert feed is not None and cutter is not None
            end = feed.available
            if end > taken:
                scores.extend(repeat(0.0, end - taken))
                ready.extend(cutter.add(texts, taken, end))
                taken = end
            if feed.closed:
                ready.extend(cutter.close())
                ready.extend(repeat(None, workers_wanted))  # one end for each worker
            wake.set()

        async def run_batch(batch: Sequence[int]) -> None:
            try:
                batch_scores = await client.rerank(query, [texts[i] for i in batch], s)
            except RequestTooLarge as error:
                if len(batch) == 1:
                    raise ApiRefused(
                        f"a single document is too large for the API: {error}", error.status
                    ) from None
                middle = len(batch) // 2
                await run_batch(batch[:middle])
                await run_batch(batch[middle:])
                return
            self.stats.batches += 1
            self.stats.sent += len(batch)
            for position, value in zip(batch, batch_scores, strict=True):
                scores[position] = value
            if on_scores is not None:
                on_scores(batch, batch_scores)

        async def worker() -> None:
            while True:
                while not ready:
                    if feed is None:
                        return
                    wake.clear()
                    await wake.wait()
                batch = ready.popleft()
                if batch is None:
                    return
                await run_batch(batch)

        if feed is not None:
            feed.listen(more)
            more()
        workers = [asyncio.ensure_future(worker()) for _ in range(workers_wanted)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return scores
