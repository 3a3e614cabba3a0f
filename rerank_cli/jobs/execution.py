"""What every ranking command shares once it has a plan: the engine (behind the score cache),
the cost check (--dry-run, --max-docs, --max-cost), scoring with progress, ranking, the usage
summary (-v, --stats) and writing."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson

from rerank_cli.core import pipeline
from rerank_cli.core.budget import Estimate, budget_refusal, count_requests
from rerank_cli.core.documents import Document, Result
from rerank_cli.engines.interface import Engine, Stats
from rerank_cli.engines.registry import make_engine
from rerank_cli.errors import ApiRefused, ExitCode, NothingToShow, OutputClosed, UsageError
from rerank_cli.settings.resolution import Settings
from rerank_cli.terminal import Environment

T = TypeVar("T")


@dataclass(kw_only=True)
class JobOptions:
    """The options of a ranking command that do not depend on its input."""

    settings: Settings = field(default_factory=Settings)
    output: str | None = None  # None: table on a terminal, else jsonl
    filters: pipeline.Filters = field(default_factory=pipeline.Filters)
    quiet: bool = False
    verbose: bool = False
    dry_run: bool = False
    stats_path: str | None = None  # --stats FILE ("-": stderr)


def plan_work(
    env: Environment,
    query: str,
    documents: Sequence[Document],
    job: JobOptions,
    split: pipeline.Splitter = pipeline.whole,
) -> pipeline.Plan:
    """The texts to score: documents split by ``split``, then any part over the model's token
    limit windowed, truncated or refused (--long), then deduplicated."""
    settings = job.settings
    if settings.engine != "api":
        return pipeline.plan(documents, split)
    from rerank_cli.core.long_documents import LongDocuments, document_limit

    if settings.instruction and settings.instruction_mode == "none":
        env.warn(
            f"the {settings.profile.name} profile sends no instruction (instruction mode none): "
            "-I/--task is ignored; choose --instruction-mode query to put it in the query"
        )
    limit = document_limit(settings, query)
    if job.verbose and not limit.tokenizer.exact:  # an estimate is worth knowing about
        env.info(limit.describe())
    long = LongDocuments(limit, settings.long, settings.chunk_overlap)
    work = pipeline.plan(documents, long.wrap(split, documents))
    if long.truncated:
        env.warn(f"{plural(long.truncated, 'document')} truncated to {limit.max_tokens:,} tokens")
    if long.windowed and job.verbose:
        windowed = plural(long.windowed, "long document")
        env.info(f"{windowed} split into windows; {limit.describe()}")
    return work


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def output_format(env: Environment, output: str | None) -> str:
    if output is not None:
        return output
    return "table" if env.stdout_isatty else "jsonl"


def guard_output(write: Callable[[], object]) -> None:
    """Run a writer; a reader that went away (``| head``) ends the run quietly."""
    try:
        write()
    except BrokenPipeError:
        raise OutputClosed() from None


def summary(stats: Stats, engine: str, cost: float | None = None) -> str:
    rate = stats.sent / stats.elapsed if stats.elapsed > 0 else 0.0
    parts = [f"{stats.documents} documents"]
    if stats.skipped:
        parts.append(f"{stats.skipped} skipped")
    parts += [f"{stats.unique} unique"]
    if stats.cache_hits:
        parts.append(f"{stats.cache_hits} cached")
    parts += [
        f"{stats.sent} scored by {engine}",
        f"{stats.requests} requests",
        f"{stats.retries} retries",
        f"{stats.elapsed:.2f} s",
        f"{rate:,.0f} docs/s",
    ]
    if cost is not None:
        parts.append(f"estimated ${cost:.6f}")
    return ", ".join(parts)


def usage(stats: Stats, cost: float | None) -> dict[str, Any]:
    """The --stats object CI scripts parse."""
    return {
        "documents": stats.documents,
        "skipped": stats.skipped,
        "texts": stats.texts,
        "unique": stats.unique,
        "cache_hits": stats.cache_hits,
        "billed": stats.sent,
        "requests": stats.requests,
        "retries": stats.retries,
        "bytes_sent": stats.bytes_sent,
        "elapsed_seconds": round(stats.elapsed, 6),
        "estimated_cost": cost,
    }


def write_stats(env: Environment, path: str, data: dict[str, Any]) -> None:
    payload = orjson.dumps(data) + b"\n"
    if path == "-":
        env.stderr.write(payload.decode())
        env.stderr.flush()
        return
    try:
        Path(path).write_bytes(payload)
    except OSError as error:
        raise UsageError(f"cannot write --stats file {path}: {error.strerror}") from None


@contextmanager
def cached(env: Environment, engine: Engine, settings: Settings, stats: Stats) -> Iterator[Engine]:
    """The engine behind the score cache, for a hosted API (BM25 scores depend on the other
    documents, so they are never cached)."""
    if settings.engine != "api" or settings.cache == "off":
        yield engine
        return
    from rerank_cli.store.cached_engine import CachedEngine
    from rerank_cli.store.score_cache import Scope, open_cache

    store = open_cache(env.env, env.warn)
    try:
        yield CachedEngine(
            engine,
            store,
            Scope.for_settings(settings),
            mode="normal" if settings.cache == "on" else "refresh",
            ttl_days=settings.cache_ttl,
            stats=stats,
        )
    finally:
        if store is not None:
            store.close()


def estimate(
    query: str, work: pipeline.Plan, engine: Engine, settings: Settings, need_price: bool
) -> Estimate:
    from rerank_cli.store.cached_engine import CachedEngine

    if isinstance(engine, CachedEngine):
        pending = engine.pending(query, work.texts)
    else:
        pending = list(range(len(work.texts)))
    to_send = [work.texts[p] for p in pending]
    price, note = None, ""
    if settings.engine == "lexical":
        price = 0.0
    elif need_price and to_send:
        from rerank_cli.jobs.catalog_job import price_per_1k

        price, note = price_per_1k(settings)
    return Estimate(
        documents=len(work.documents),
        unique=len(work.texts),
        cached=len(work.texts) - len(to_send),
        to_send=len(to_send),
        requests=count_requests(to_send, settings, query) if settings.engine == "api" else 0,
        price_per_1k=price,
        price_note=note,
    )


def run_cost(
    stats: Stats, settings: Settings, known: Estimate | None, lookup: bool = True
) -> float | None:
    """The estimated cost of what was sent: the price the estimate found, else one lookup (not
    after a failure: the server may be the problem), and only when something was billed."""
    if settings.engine != "api" or stats.sent == 0:
        return 0.0
    if known is not None and known.price_per_1k is not None:
        price: float | None = known.price_per_1k
    elif not lookup:
        price = None
    else:
        from rerank_cli.jobs.catalog_job import price_per_1k

        price, _ = price_per_1k(settings)
    return None if price is None else stats.sent * price / 1000.0


def check_stats_path(path: str | None) -> None:
    """An unwritable --stats file is found before anything is paid for, not after."""
    if path is None or path == "-":
        return
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write --stats file {path}: {error.strerror}") from None


def execute(
    env: Environment,
    query: str,
    work: pipeline.Plan,
    stats: Stats,
    job: JobOptions,
    emit: Callable[[list[Result], str], None],
    fmt: str,
) -> ExitCode:
    """Check the cost, score the plan, rank, report, and hand the results to ``emit``."""
    settings = job.settings
    check_stats_path(job.stats_path)
    notify = env.info if job.verbose else None
    # A dry run sends nothing, so it needs no key.
    inner = make_engine(settings, stats, notify=notify, require_key=not job.dry_run)
    started = time.perf_counter()
    planned: Estimate | None = None
    scored: list[Result] | None = None
    failure: BaseException | None = None
    with cached(env, inner, settings, stats) as engine:
        try:
            if job.dry_run or settings.max_docs is not None or settings.max_cost is not None:
                need_price = job.dry_run or settings.max_cost is not None
                planned = estimate(query, work, engine, settings, need_price)
                refusal = budget_refusal(planned, settings)
                if job.dry_run or refusal:
                    count_unscored(stats, work, planned)
                if job.dry_run:
                    report_dry_run(env, job, planned, refusal)
                    return ExitCode.OK
                if refusal:
                    raise UsageError(f"{refusal}; nothing was sent")
            scored = score(env, query, work, engine, stats, job)
        except BaseException as error:
            failure = error
            raise
        finally:
            if stats.elapsed == 0.0:  # scoring did not finish (or start): time what there was
                stats.elapsed = time.perf_counter() - started
            # -v sums up a scoring run (a dry run or a refusal has said its figures already);
            # --stats is written whatever happened: CI scripts parse it. The price is looked
            # up unless the network or the server has just failed (or Ctrl-C).
            if (job.verbose and scored is not None) or job.stats_path:
                lookup = failure is None or isinstance(failure, (ApiRefused, UsageError))
                cost = run_cost(stats, settings, planned, lookup)
                if job.verbose and scored is not None:
                    env.info(summary(stats, engine.name, cost))
                if job.stats_path:
                    report_stats(env, job.stats_path, usage(stats, cost), failure is not None)
    results = pipeline.rank(scored, job.filters)
    if not results:
        if job.quiet:
            return ExitCode.NOTHING_TO_SHOW
        raise NothingToShow("no results left after --top-k/--min-score")
    if not job.quiet:
        guard_output(lambda: emit(results, fmt))
    return ExitCode.OK


def score(
    env: Environment,
    query: str,
    work: pipeline.Plan,
    engine: Engine,
    stats: Stats,
    job: JobOptions,
) -> list[Result]:
    """Score with a progress bar when there is more than one batch to wait for."""
    from rerank_cli import collector
    from rerank_cli.terminal import progress_bar

    settings = job.settings
    if settings.engine == "api" and work.texts:
        if not _will_send(query, work, engine, stats):
            # The cache answers everything, without waiting on anything: no event loop.
            return _without_waiting(pipeline.score_plan(query, work, engine, stats))
        from rerank_cli.engines.api.client import load_http_stack

        load_http_stack()  # start-up, not scoring: outside the clock of -v
    import asyncio

    many = settings.engine == "api" and len(work.texts) > settings.batch_size
    with progress_bar(env, enabled=many) as on_progress, collector.resumed():
        return asyncio.run(pipeline.score_plan(query, work, engine, stats, on_progress=on_progress))


def _without_waiting(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that finishes without awaiting anything that waits."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    coroutine.close()
    raise RuntimeError("the score cache was expected to answer without waiting")


def _will_send(query: str, work: pipeline.Plan, engine: Engine, stats: Stats) -> bool:
    """Whether the cache leaves anything to send. The lookup is timed as scoring, and the
    engine reuses it."""
    from rerank_cli.store.cached_engine import CachedEngine

    if not isinstance(engine, CachedEngine):
        return True
    started = time.perf_counter()
    pending = engine.pending(query, work.texts)
    stats.elapsed += time.perf_counter() - started
    return bool(pending)


def report_dry_run(
    env: Environment, job: JobOptions, planned: Estimate, refusal: str | None
) -> None:
    if job.output in ("json", "jsonl"):  # asked for: the report is the data
        data = planned.as_dict()
        data["refused"] = refusal
        guard_output(lambda: env.stdout.write(orjson.dumps(data) + b"\n"))
        return
    env.info(planned.text())
    if refusal:
        env.warn(f"the real run would stop: {refusal}")


def count_unscored(stats: Stats, work: pipeline.Plan, planned: Estimate) -> None:
    """A run that stops before scoring (dry run, budget refusal) still counts its input and
    what the cache would answer; nothing was billed."""
    stats.texts += len(work.units)
    stats.unique += len(work.texts)
    stats.cache_hits += planned.cached


def report_stats(env: Environment, path: str, data: dict[str, Any], failed: bool) -> None:
    """Write --stats; if the run is failing already, a write error is a warning, so that it
    does not hide the run's own error."""
    try:
        write_stats(env, path, data)
    except UsageError as error:
        if not failed:
            raise
        env.warn(error.message)
