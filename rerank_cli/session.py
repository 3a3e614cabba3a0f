"""The ranking session: the one place where settings, the engine stack, the score cache, the
usage counters, one event loop and one HTTP connection pool come together.

Every job — ``rank``, ``files``, ``models``, ``account``, the Python API — is source →
:class:`Reranker` → writer. A session lives as long as its job: one query for the CLI, many for
a script or a server. Its event loop runs on a thread of its own, so the synchronous methods
work anywhere (a script, or Jupyter, whose main thread already runs a loop), and ``arank``
awaits the same loop from any other one; all calls share one ``httpx.AsyncClient`` (keep-alive
across queries) and one limit of ``concurrency`` requests in flight.

    from rerank_cli import Reranker

    with Reranker(profile="vllm", base_url="http://gpu:8000/v1", no_cache=True) as ranker:
        for result in ranker.rank("capital of France", ["Paris is …", "Bananas …"], top_k=1):
            print(result.rank, result.score, result.document.text)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from rerank_cli.core import pipeline
from rerank_cli.core.documents import STREAM_HOLD, Document, Result
from rerank_cli.engines.interface import (
    Engine,
    Stats,
    StreamingEngine,
    TextFeed,
    can_stream,
    streaming,
)
from rerank_cli.engines.registry import ENGINES, Capabilities, EngineSpec, spec_of
from rerank_cli.errors import ApiError, ApiRefused, UsageError
from rerank_cli.redact import register_secret
from rerank_cli.settings.resolution import check_transport_security
from rerank_cli.terminal import Environment
from rerank_cli.words import plural

if TYPE_CHECKING:
    from rerank_cli.core.budget import Estimate
    from rerank_cli.core.long_documents import LongDocuments
    from rerank_cli.engines.api.client import RerankClient
    from rerank_cli.providers.pricing import ModelInfo
    from rerank_cli.settings.schema import Settings
    from rerank_cli.store.cached_engine import CachedEngine
    from rerank_cli.store.score_cache import ScoreCache

T = TypeVar("T")
Progress = Callable[[int, int], None]
# What a session ranks: texts, JSON objects (the text at ``field``, or a usual text field), or
# documents already read.
DocumentLike = str | Mapping[str, Any] | Document


class _LoopThread:
    """An asyncio event loop on a daemon thread of its own, for the session's whole life."""

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="rerank-session", daemon=True
        )
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result, waited for on this thread. Ctrl-C here cancels it on the
        loop and waits for its clean-up (scores already paid for are stored) before going on."""
        future = self.submit(coroutine)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()  # cancels the task on the loop
            self.run_until_idle()
            raise

    def run_until_idle(self) -> None:
        """Wait until every task but the loop's own bookkeeping has finished."""
        import asyncio

        async def others_done() -> None:
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(others_done(), self.loop).result()

    def cancel_all(self) -> None:
        """Cancel every task still running, and wait for their clean-up."""
        import asyncio

        async def cancel() -> None:
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread (after :meth:`cancel_all`)."""
        try:
            self.run(self.loop.shutdown_asyncgens())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()


class Reranker:
    """A ranking session. ``Reranker(**settings)`` takes every setting by its config-file name
    or its long option name (``batch_size=32``, ``no_cache=True``, ``profile="cohere"``,
    ``base_url=…``), resolved as the CLI resolves them: option → environment → config file →
    profile → default. Use it as a context manager (``with`` or ``async with``), or call
    :meth:`close`."""

    def __init__(self, **settings: Any) -> None:
        from rerank_cli.settings import load

        env = Environment.from_system()
        env.stderr_isatty = False  # a library shows no progress bar
        self._setup(load(env.env, settings), env, require_key=True)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        env: Environment | None = None,
        *,
        require_key: bool = True,
        notify: Callable[[str], None] | None = None,
        waiting: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> Reranker:
        """A session on settings already resolved (the CLI's way in). ``require_key=False``
        for a run that sends nothing (``--dry-run``); ``notify`` hears about retries (-v);
        ``waiting`` is entered while requests are out (the CLI runs the garbage collector
        then)."""
        session = cls.__new__(cls)
        env = env or Environment.from_system()
        session._setup(settings, env, require_key, notify, waiting)
        return session

    def _setup(
        self,
        settings: Settings,
        env: Environment,
        require_key: bool,
        notify: Callable[[str], None] | None = None,
        waiting: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        from urllib.parse import urlsplit

        register_secret(settings.api_key)
        register_secret(urlsplit(settings.base_url).password)  # a password in the URL is one too
        check_engine(settings, require_key)
        self.settings = settings
        self.env = env
        self.stats = Stats()
        self._spec: EngineSpec = spec_of(settings)
        self._notify = notify
        self._waiting = waiting
        self._lock = threading.Lock()  # the loop, the stacks and the counters of documents
        self._loop: _LoopThread | None = None
        self._client: RerankClient | None = None
        # Engine stacks by the settings of a call (another instruction is another stack).
        self._stacks: dict[tuple[str | None, str | None], _Stack] = {}
        self._store: ScoreCache | None = None
        self._store_opened = False
        self._prices: dict[str, tuple[float | None, str]] = {}
        self._closed = False

    # -- lifetime

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Reranker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Close the connection pool, the cache and the loop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self._loop is not None:
                try:
                    self._loop.cancel_all()  # calls still running end: "closed during the call"
                    if self._client is not None:
                        self._loop.run(self._client.__aexit__(None, None, None))
                finally:
                    self._loop.close()
        finally:
            if self._store is not None:
                self._store.close()

    @property
    def capabilities(self) -> Capabilities:
        """What the session's engine can do (registry.Capabilities)."""
        return self._spec.capabilities

    # -- the public API

    def rank(
        self,
        query: str,
        documents: Iterable[DocumentLike],
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        instruction: str | None = None,
        task: str | None = None,
        field: str | None = None,
    ) -> list[Result]:
        """``documents`` ranked for ``query``, best first (ranks from 1, ties in input order),
        with ``top_k``/``min_score`` applied. ``instruction`` or ``task`` override the
        session's for this call; ``field`` picks the text of dict documents (dotted path)."""
        filters, settings = self._call(query, documents, top_k, min_score, instruction, task)
        work = self.plan(query, as_documents(documents, field), settings=settings)
        return list(pipeline.rank(self.score(query, work, settings=settings), filters))

    async def arank(
        self,
        query: str,
        documents: Iterable[DocumentLike],
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        instruction: str | None = None,
        task: str | None = None,
        field: str | None = None,
    ) -> list[Result]:
        """:meth:`rank` for async code (FastAPI, Jupyter): the work runs on the session's loop,
        so the caller's loop is never blocked, and concurrent calls share one request limit."""
        import asyncio

        filters, settings = self._call(query, documents, top_k, min_score, instruction, task)
        loop = self._start()
        # The caller's documents are read here, on the caller's thread (a database cursor may
        # not leave it); planning (tokenising long documents) is work for a worker thread.
        given = as_documents(documents, field)
        work = await asyncio.to_thread(self.plan, query, given, settings=settings)
        scoring = loop.submit(self._score(query, work, settings, None))
        scored = await self._closed_during(asyncio.wrap_future(scoring))
        return list(pipeline.rank(scored, filters))

    def estimate(
        self,
        query: str,
        documents: Iterable[DocumentLike] | pipeline.Plan,
        *,
        need_price: bool = True,
        field: str | None = None,
        settings: Settings | None = None,
    ) -> Estimate:
        """What ranking ``documents`` would send and cost (what ``--dry-run`` reports), without
        sending anything; under ``settings`` (see :meth:`settings_for`), else the session's."""
        from rerank_cli.core.budget import Estimate

        settings = settings or self.settings
        work = (
            documents
            if isinstance(documents, pipeline.Plan)
            else self.plan(query, as_documents(documents, field), settings=settings)
        )
        capabilities = self._spec.capabilities
        to_send = [work.texts[p] for p in self._pending(settings, query, work.texts)]
        price, note = (0.0, "") if not capabilities.billed else (None, "")
        if capabilities.billed and need_price and to_send:
            price, note = self.price_per_1k()
        return Estimate(
            documents=len(work.documents),
            unique=len(work.texts),
            cached=len(work.texts) - len(to_send),
            to_send=len(to_send),
            requests=self._stack(settings).requests(query, to_send),
            price_per_1k=price,
            price_note=note,
        )

    # -- the steps, for jobs that report between them

    def settings_for(self, instruction: str | None = None, task: str | None = None) -> Settings:
        """The settings of a call with its own ``instruction`` or ``task`` (the session's when
        both are None), for :meth:`plan`, :meth:`score` and :meth:`estimate`; the same object
        for the same instruction, so that its engine stack and cache lookups are shared."""
        return self._for_call(instruction, task)

    def plan(
        self,
        query: str,
        documents: Iterable[Document],
        split: pipeline.Splitter = pipeline.whole,
        *,
        settings: Settings | None = None,
        verbose: bool = False,
    ) -> pipeline.Plan:
        """The texts to score: documents numbered, split by ``split``, any part over the
        model's token limit windowed, truncated or refused (``long``), then deduplicated."""
        settings = settings or self.settings
        check_query(query)  # before any input is read, and nothing is billed
        numbered = _numbered(documents)
        with self._lock:
            self.stats.documents += len(numbered)
        long = self._long_documents(settings, query, verbose) if numbered else None
        if long is None:
            return pipeline.plan(numbered, split)
        work = pipeline.plan(numbered, long.wrap(split, numbered))
        self._said_long(long, verbose)
        return work

    def plan_blocks(
        self,
        query: str,
        blocks: Iterable[Sequence[Document]],
        split: pipeline.Splitter = pipeline.whole,
        *,
        settings: Settings | None = None,
        verbose: bool = False,
    ) -> pipeline.Plan:
        """:meth:`plan` over documents read in blocks, held compactly (a
        :class:`~rerank_cli.core.documents.DocumentStore`): the same plan, for inputs of
        millions of lines."""
        settings = settings or self.settings
        check_query(query)
        long = self._long_documents(settings, query, verbose)
        planner = pipeline.Planner(whole_documents=split is pipeline.whole)
        for block in blocks:
            self._add(planner, block, split, long)
        if long is not None:
            self._said_long(long, verbose)
        return planner.finish()

    def _add(
        self,
        planner: pipeline.Planner,
        block: Sequence[Document],
        split: pipeline.Splitter,
        long: LongDocuments | None,
    ) -> None:
        """Plan one block; a block none of whose documents comes near the token limit is
        split by ``split`` itself."""
        if block:
            planner.add(block, split if long is None else long.wrap(split, block))
            with self._lock:
                self.stats.documents += len(block)

    def _long_documents(
        self, settings: Settings, query: str, verbose: bool
    ) -> LongDocuments | None:
        """What keeps every text within the model's token limit, or None when the engine
        reads any length."""
        if not self._spec.capabilities.token_limited:
            return None
        from rerank_cli.core.long_documents import LongDocuments, document_limit

        if settings.instruction and settings.instruction_mode == "none":
            self.env.warn(
                f"the {settings.profile.name} profile sends no instruction (instruction mode "
                "none): -I/--task is ignored; choose --instruction-mode query to put it in the "
                "query"
            )
        limit = document_limit(settings, query)
        if verbose and not limit.tokenizer.exact:  # an estimate is worth knowing about
            self.env.info(limit.describe())
        return LongDocuments(limit, settings.long, settings.chunk_overlap)

    def _said_long(self, long: LongDocuments, verbose: bool) -> None:
        limit = long.limit
        if long.truncated:
            self.env.warn(
                f"{plural(long.truncated, 'document')} truncated to {limit.max_tokens:,} tokens"
            )
        if long.windowed and verbose:
            self.env.info(
                f"{plural(long.windowed, 'long document')} split into windows; {limit.describe()}"
            )

    def score(
        self,
        query: str,
        work: pipeline.Plan,
        on_progress: Progress | None = None,
        *,
        settings: Settings | None = None,
        landed: dict[int, float] | None = None,
    ) -> Sequence[Result]:
        """Score a plan: the cache answers what it can, the engine the rest. Results come
        back unranked, in input order. ``landed`` receives each text's score as it lands (so
        that a run that fails part-way can show what it scored)."""
        return self._run(self._score(query, work, settings or self.settings, on_progress, landed))

    async def _score(
        self,
        query: str,
        work: pipeline.Plan,
        settings: Settings,
        on_progress: Progress | None,
        landed: dict[int, float] | None = None,
    ) -> Sequence[Result]:
        engine = self._stack(settings)
        if self._spec.capabilities.remote and work.texts:
            # The lookup is timed as scoring, and the engine reuses it.
            started = time.perf_counter()
            will_send = bool(self._pending(settings, query, work.texts))
            self.stats.elapsed += time.perf_counter() - started
            if will_send:
                await self._connect()  # start-up (the HTTP stack's imports): outside the clock
                with self._waiting():
                    return await pipeline.score_plan(
                        query, work, engine, self.stats, on_progress, landed
                    )
        return await pipeline.score_plan(query, work, engine, self.stats, on_progress, landed)

    def plan_and_score(
        self,
        query: str,
        blocks: Iterable[Sequence[Document]],
        split: pipeline.Splitter = pipeline.whole,
        on_progress: Progress | None = None,
        *,
        settings: Settings | None = None,
        verbose: bool = False,
    ) -> tuple[pipeline.Plan, Sequence[Result]]:
        """:meth:`plan` then :meth:`score`, streamed: documents come in blocks (a reader's
        block is what one read of its input gave), each block is planned as it comes, and
        the new distinct texts go to the engine at once, so that the first request leaves as
        soon as one batch is full, not when the input ends. The plan and the results are
        those of ``plan`` then ``score`` over the same documents. An engine that needs every
        text first (BM25) reads everything, then scores."""
        settings = settings or self.settings
        check_query(query)
        engine = self._stack(settings)
        if not (self._spec.capabilities.remote and can_stream(engine)):
            documents = [document for block in blocks for document in block]
            work = self.plan(query, documents, split, settings=settings, verbose=verbose)
            return work, self.score(query, work, on_progress, settings=settings)
        long = self._long_documents(settings, query, verbose)
        planner = pipeline.Planner(whole_documents=split is pipeline.whole, hold=STREAM_HOLD)
        feed = TextFeed(planner.plan.texts)
        loop = self._start()
        scoring = loop.submit(self._score_feed(query, feed, streaming(engine), on_progress))
        told = 0

        def tell() -> None:  # on the loop: the texts planned so far are ready
            feed.advance(len(feed.texts))

        try:
            for block in blocks:
                self._add(planner, block, split, long)
                if len(feed.texts) > told:
                    told = len(feed.texts)
                    loop.loop.call_soon_threadsafe(tell)
                if scoring.done():  # failed: stop reading
                    break
            loop.loop.call_soon_threadsafe(feed.close)
            scores = scoring.result()
        except BaseException:
            scoring.cancel()
            loop.run_until_idle()
            raise
        work = planner.finish()
        if long is not None:
            self._said_long(long, verbose)
        with self._lock:
            self.stats.texts += work.unit_count
            self.stats.unique += len(work.texts)
        return work, pipeline.fold(work, scores)

    async def _score_feed(
        self, query: str, feed: TextFeed, engine: StreamingEngine, on_progress: Progress | None
    ) -> Sequence[float]:
        started = time.perf_counter()
        on_scores = None
        if on_progress is not None:
            done = 0

            def on_scores(positions: Sequence[int], _: Sequence[float]) -> None:
                nonlocal done
                done += len(positions)
                on_progress(done, feed.available)

        try:
            # The collector runs while requests are out (their futures and errors make
            # cycles): a stream has requests out from its first full batch on.
            with self._waiting():
                return await engine.score_feed(query, feed, on_scores)
        finally:
            self.stats.elapsed += time.perf_counter() - started

    # -- the provider's other endpoints, through the same client

    def price_per_1k(self) -> tuple[float | None, str]:
        """(USD per 1,000 documents, why unknown), looked up once per session. Never raises:
        a price is a nicety, so it gets one quick try rather than the full retry budget."""
        model = self.settings.model
        if model not in self._prices:
            from rerank_cli.providers import pricing

            try:
                payload = self._run(self._get(models_url(self.settings), quick=True))
            except ApiError as error:
                return None, f"GET /models failed: {error}"  # asked again next time
            else:
                price = pricing.price_per_1k(payload, model)
                note = "" if price is not None else f"{model} has no per-document price listed"
                self._prices[model] = (price, note)
        return self._prices[model]

    def models(self) -> list[ModelInfo]:
        """The models the endpoint lists (``GET /models``), with prices."""
        from rerank_cli.providers import pricing

        return pricing.parse_models(self._run(self._get(models_url(self.settings))))

    def account(self) -> Any:
        """The account's balance (gigarouter's ``GET /account?key=``). The key travels in that
        URL's query string, so the URL is never shown."""
        import httpx

        if not self.settings.api_key:  # whatever the engine: the account is the key's
            raise ApiRefused(f"no API key — {key_hint(self.settings)}")
        key = self.settings.api_key
        # A server that echoes the URL it got shows the key percent-encoded: hide that form too.
        register_secret(str(httpx.QueryParams({"key": key})).removeprefix("key="))
        return self._run(self._get(account_url(self.settings), {"key": key}))

    # -- what the session owns

    def _start(self) -> _LoopThread:
        with self._lock:
            if self._closed:
                raise UsageError("this Reranker is closed")
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        from concurrent.futures import CancelledError

        try:
            loop = self._start()
        except UsageError:
            coroutine.close()
            raise
        try:
            return loop.run(coroutine)
        except CancelledError:
            if self._closed:
                raise UsageError("this Reranker was closed during the call") from None
            raise

    async def _closed_during(self, awaitable: Awaitable[T]) -> T:
        import asyncio

        try:
            return await awaitable
        except asyncio.CancelledError:
            if self._closed:  # not the caller's cancellation: the session's close()
                raise UsageError("this Reranker was closed during the call") from None
            raise

    async def _connect(self) -> RerankClient:
        """The session's client, opened on first use, on the session's loop."""
        if self._client is None:
            from rerank_cli.engines.api.client import RerankClient

            client = RerankClient(self.settings, self.stats, notify=self._notify)
            await client.__aenter__()
            self._client = client
        return self._client

    async def _get(
        self, url: str, params: Mapping[str, str] | None = None, quick: bool = False
    ) -> Any:
        client = await self._connect()
        return await client.get_json(url, params=params, quick=quick)

    def _stack(self, settings: Settings) -> Engine:
        """The engine for these settings, behind the score cache when its scores are
        cacheable; built once per instruction, so that a budget check's cache lookup serves
        the run that follows."""
        return self._built(settings).engine

    def _pending(self, settings: Settings, query: str, texts: Sequence[str]) -> Sequence[int]:
        """Positions of ``texts`` the cache does not answer: what a run would send."""
        cached = self._built(settings).cached
        return range(len(texts)) if cached is None or not texts else cached.pending(query, texts)

    def _built(self, settings: Settings) -> _Stack:
        key = (settings.instruction, settings.task)
        with self._lock:
            stack = self._stacks.get(key)
            if stack is not None and stack.settings is settings:
                return stack
        engine = self._spec.build(settings, self.stats, connect=self._connect, notify=self._notify)
        store = self._cache(settings)
        cached = None
        if store is not None:
            from rerank_cli.store.cached_engine import CachedEngine
            from rerank_cli.store.score_cache import Scope

            cached = CachedEngine(
                engine,
                store,
                Scope.for_settings(settings),
                mode="normal" if settings.cache == "on" else "refresh",
                ttl_days=settings.cache_ttl,
                stats=self.stats,
            )
        stack = _Stack(settings, cached or engine, cached)
        with self._lock:
            return self._stacks.setdefault(key, stack)

    def _cache(self, settings: Settings) -> ScoreCache | None:
        """The score cache, opened on first use; None when this engine's scores are not
        cacheable, the cache is off, or it cannot be opened (after one warning)."""
        if not self._spec.capabilities.cacheable or settings.cache == "off":
            return None
        if not self._store_opened:
            from rerank_cli.store.score_cache import open_cache

            self._store_opened = True
            self._store = open_cache(self.env.env, self.env.warn)
        return self._store

    def _for_call(self, instruction: str | None, task: str | None) -> Settings:
        """The settings of a call: the session's, or with another instruction (the same
        object for the same instruction, so that its engine stack is reused)."""
        if instruction is None and task is None:
            return self.settings
        from rerank_cli.providers.instructions import task_instruction

        key: tuple[str | None, str | None]
        if instruction is not None:
            key, text = (instruction, None), instruction
        else:
            key, text = (None, task), task_instruction(str(task))
        with self._lock:
            stack = self._stacks.get(key)
        if stack is not None:
            return stack.settings
        return replace(self.settings, instruction=text, task=key[1])

    def _call(
        self,
        query: object,
        documents: object,
        top_k: object,
        min_score: object,
        instruction: object,
        task: object,
    ) -> tuple[pipeline.Filters, Settings]:
        """A call's arguments checked (with messages in the API's words), its filters and its
        settings."""
        if not isinstance(query, str):
            raise UsageError(f"query must be a string, got {python_kind(query)}")
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Iterable):
            raise UsageError(
                "documents must be a list (or any iterable) of strings, dicts or Documents, "
                f"got {python_kind(documents)}"
            )
        filters = filters_of(top_k, min_score)
        for name, value in (("instruction", instruction), ("task", task)):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{name} must be a string, got {python_kind(value)}")
        return filters, self._for_call(instruction, task)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Stack:
    settings: Settings
    engine: Engine  # behind the cache, when there is one
    cached: CachedEngine | None


def filters_of(top_k: object, min_score: object) -> pipeline.Filters:
    """``top_k`` and ``min_score`` as a caller of the Python API gives them, checked."""
    import math

    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UsageError(f"top_k must be a whole number ≥ 1, got {top_k!r}")
    if min_score is not None and (
        isinstance(min_score, bool)
        or not isinstance(min_score, (int, float))
        or not math.isfinite(min_score)
    ):
        raise UsageError(f"min_score must be a finite number, got {min_score!r}")
    return pipeline.Filters(top_k=top_k, min_score=min_score)


def check_query(query: str) -> None:
    """A blank query ranks nothing: a usage error, before anything is read or sent."""
    if not query.strip():
        raise UsageError("the query is blank: give what the documents are ranked against")


def key_hint(settings: Settings) -> str:
    """Where a key for this profile can come from, for messages."""
    from rerank_cli.providers.profile import DEFAULT_PROFILE

    variables = settings.profile.key_env or ("RERANK_API_KEY",)
    hint = f"set {variables[0]}" + (f" (or {', '.join(variables[1:])})" if variables[1:] else "")
    if settings.profile.name == DEFAULT_PROFILE:
        hint += ", run: rerank config set api_key …"
    return hint + ", or pass --api-key"


def check_engine(settings: Settings, require_key: bool = True) -> None:
    """Fail now, before any input is read, if the engine cannot run: no key, or a key that
    would travel in clear text."""
    capabilities = spec_of(settings).capabilities
    if (
        require_key
        and capabilities.needs_key
        and settings.profile.key_required
        and not settings.api_key
    ):
        offline = [name for name, spec in ENGINES.items() if not spec.capabilities.needs_key]
        alternative = f", or rank offline with --engine {offline[0]}" if offline else ""
        raise ApiRefused(f"no API key — {key_hint(settings)}{alternative}")
    if capabilities.remote:
        check_transport_security(settings)


def rerank(
    query: str,
    documents: Iterable[DocumentLike],
    *,
    top_k: int | None = None,
    min_score: float | None = None,
    instruction: str | None = None,
    task: str | None = None,
    field: str | None = None,
    **settings: Any,
) -> list[Result]:
    """Rank ``documents`` for ``query`` in a one-off session; ``settings`` as for
    :class:`Reranker` (config-file or long option names)."""
    with Reranker(**settings) as session:
        return session.rank(
            query,
            documents,
            top_k=top_k,
            min_score=min_score,
            instruction=instruction,
            task=task,
            field=field,
        )


def as_documents(documents: Iterable[DocumentLike], field: str | None = None) -> list[Document]:
    """Strings, JSON-like objects (the text at ``field``, else the first of the usual text
    fields; the object is kept as the record) or documents, as documents."""
    from rerank_cli.sources.jsonish import text_of
    from rerank_cli.sources.records import ReadOptions

    options = ReadOptions(field=field)
    converted = []
    for number, item in enumerate(documents):
        if isinstance(item, Document):
            converted.append(replace(item))  # numbered per call: the caller's stays as it is
        elif isinstance(item, str):
            converted.append(Document(text=item, raw=item.encode("utf-8", "surrogateescape")))
        elif isinstance(item, Mapping):
            record = dict(item)
            try:
                text = text_of(record, options, python_kind)
            except ValueError as error:
                raise UsageError(f"document {number}: {error}") from None
            converted.append(Document(text=text, raw=b"", record=record))
        else:
            raise UsageError(
                f"document {number} is {python_kind(item)} (expected a string, a dict or a "
                "Document)"
            )
    return converted


def python_kind(value: object) -> str:
    """A value's kind in words, for the Python API's messages: ``None``, ``a number``,
    ``a list``, ``a dict`` — never a bare type name such as ``NoneType``."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (decode them to a string)"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list" if isinstance(value, list) else "a tuple"
    return f"a {type(value).__name__} object"


def _numbered(documents: Iterable[Document]) -> list[Document]:
    """The documents, each numbered by its position in this call's input."""
    numbered = list(documents)
    for index, document in enumerate(numbered):
        document.index = index
    return numbered


def models_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/models"


def account_url(settings: Settings) -> str:
    """gigarouter serves the balance beside the API root: ``https://host/account``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(settings.base_url)
    root = parts.path.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, root + "/account", "", ""))
