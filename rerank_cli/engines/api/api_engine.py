"""The hosted-API engine: batches, runs them concurrently on one keep-alive client, splits any
batch the server finds too large, and reports each batch's scores as it lands."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from rerank_cli.engines.api.batching import plan_batches
from rerank_cli.engines.api.protocol import Shape
from rerank_cli.engines.interface import ScoreCallback, Stats
from rerank_cli.errors import ApiRefused, RequestTooLarge
from rerank_cli.settings.schema import Settings

if TYPE_CHECKING:
    import httpx

    from rerank_cli.engines.api.client import RerankClient, Sleep


def batches(settings: Settings, query: str, texts: Sequence[str]) -> list[list[int]]:
    """The requests a run makes: batch size capped by the provider's documents per request,
    the byte budget, and the provider's token budget per request (query tokens count once per
    document, as Voyage counts them). Tokens are those of the texts as sent: the query with
    its instruction (in it, or in a field), each document in its prompt in template mode."""
    profile = settings.profile
    shape = Shape.of(settings)
    size = min(settings.batch_size, profile.max_documents or settings.batch_size)
    tokens = None
    if profile.max_tokens_per_request is not None:
        from rerank_cli.providers.tokens import tokenizer_for

        tokenizer = tokenizer_for(settings.model)
        sent_query, instruction_fields = shape.sent_query(query)
        per_query = tokenizer.count(sent_query) + sum(
            map(tokenizer.count, instruction_fields.values())
        )

        def tokens(text: str) -> int:
            return tokenizer.count(shape.sent_document(text)) + per_query

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
        if self._connect is not None:
            return await self._score(await self._connect(), query, texts, on_scores)
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
            return await self._score(own, query, texts, on_scores)

    def requests(self, query: str, texts: Sequence[str]) -> int:
        return len(batches(self.settings, query, texts))

    async def _score(
        self,
        client: RerankClient,
        query: str,
        texts: Sequence[str],
        on_scores: ScoreCallback | None,
    ) -> list[float]:
        import asyncio

        s = self.settings
        scores = [0.0] * len(texts)
        pending = deque(batches(s, query, texts))

        async def run_batch(batch: list[int]) -> None:
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
            while pending:
                await run_batch(pending.popleft())

        workers = [asyncio.ensure_future(worker()) for _ in range(min(s.concurrency, len(pending)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return scores
