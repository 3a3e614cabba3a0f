"""What every ranking command does once its documents are read: the cost check (--dry-run,
--max-docs, --max-cost), scoring on the session with a progress bar, ranking, the usage
summary (-v, --stats) and writing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from rerank_cli.core import pipeline
from rerank_cli.core.budget import Estimate, budget_refusal
from rerank_cli.core.documents import Document, Result
from rerank_cli.engines.interface import Stats
from rerank_cli.errors import (
    ApiError,
    ApiRefused,
    ExitCode,
    NothingToShow,
    OutputClosed,
    UsageError,
)
from rerank_cli.session import Reranker
from rerank_cli.settings.schema import Settings
from rerank_cli.terminal import Environment
from rerank_cli.words import plural


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
    yes: bool = False  # -y: do not ask before a large run
    partial: bool = False  # --partial: on an API failure, print what was scored, then fail


@dataclass
class Incoming:
    """Documents still to be read, in blocks, for :func:`execute` to plan and score as they
    arrive; ``read(plan)`` is called once every one is read and planned (it may refuse an
    empty input)."""

    blocks: Iterable[Sequence[Document]]
    split: pipeline.Splitter = pipeline.whole
    read: Callable[[pipeline.Plan], None] = lambda work: None
    # Still arriving (a pipe): scored as it arrives. Input that is all there (files) is
    # planned whole, then scored: with nothing to wait for, the scoring thread would only
    # contend with the planning for the interpreter.
    arriving: bool = True


def needs_count(env: Environment, session: Reranker, job: JobOptions) -> bool:
    """Whether the run must know every document before it may send one: a dry run, a budget
    (--max-docs, --max-cost), a question to ask first (confirm_over on a terminal), or
    --long error (a document over the limit stops the run before anything is sent); or, with
    --partial, the whole plan to show part of. Such a run reads its whole input first; any
    other streams input that is still arriving."""
    settings = job.settings
    return (
        job.dry_run
        or job.partial
        or settings.max_docs is not None
        or settings.max_cost is not None
        or settings.long == "error"
        or asks_first(env, session, job)
    )


def open_session(env: Environment, job: JobOptions) -> Reranker:
    """The job's session. A dry run sends nothing, so it needs no key; a missing key or an
    insecure URL fails here, before any input is read."""
    from rerank_cli import collector

    return Reranker.from_settings(
        job.settings,
        env,
        require_key=not job.dry_run,
        notify=retry_notices(env, job.verbose),
        # The cyclic collector, paused for the command's bulk work, runs while requests are
        # out: exceptions and futures make cycles there.
        waiting=collector.resumed,
    )


def retry_notices(env: Environment, verbose: bool) -> Callable[[str], None]:
    """Every retry with -v; without it, the first only — a terminal left blank while the
    network fails is worse than one line."""
    said = False

    def notice(message: str) -> None:
        nonlocal said
        if verbose:
            env.info(message)
        elif not said:
            said = True
            env.info(f"{message} (-v shows each retry)")

    return notice


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
    parts = [plural(stats.documents, "document")]
    if stats.skipped:
        parts.append(f"{stats.skipped:,} skipped")
    if stats.texts != stats.documents:  # long documents in windows, files in chunks
        parts.append(f"{plural(stats.texts, 'text')} with the chunks")
    parts += [f"{stats.unique:,} unique"]
    if stats.cache_hits:
        parts.append(f"{stats.cache_hits:,} cached")
    parts += [
        f"{stats.sent:,} scored by {engine}",
        plural(stats.requests, "request"),
        plural(stats.retries, "retry"),
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


def check_stats_path(path: str | None) -> None:
    """An unwritable --stats file is found before anything is paid for, not after."""
    if path is None or path == "-":
        return
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write --stats file {path}: {error.strerror}") from None


def run_cost(session: Reranker, known: Estimate | None, lookup: bool = True) -> float | None:
    """The estimated cost of what was sent: the price the estimate found, else one lookup (not
    after a failure: the server may be the problem), and only when something was billed."""
    stats = session.stats
    if not session.capabilities.billed or stats.sent == 0:
        return 0.0
    if known is not None and known.price_per_1k is not None:
        price: float | None = known.price_per_1k
    elif not lookup:
        price = None
    else:
        price, _ = session.price_per_1k()
    return None if price is None else stats.sent * price / 1000.0


def execute(
    env: Environment,
    session: Reranker,
    query: str,
    work: pipeline.Plan | Incoming,
    job: JobOptions,
    emit: Callable[[Sequence[Result], str], None],
    fmt: str,
) -> ExitCode:
    """Check the cost, score the plan, rank, report, and hand the results to ``emit``.
    Documents still to be read (:class:`Incoming`) are planned and scored as they arrive,
    unless the run must count them first (:func:`needs_count`): then they are read whole,
    and go on as a plan."""
    from rerank_cli.terminal import progress_bar

    settings = job.settings
    stats = session.stats
    if isinstance(work, Incoming) and (not work.arriving or needs_count(env, session, job)):
        incoming = work
        with said_if_interrupted(env, session):  # the input may be a pipe that never closes
            work = session.plan_blocks(query, incoming.blocks, incoming.split, verbose=job.verbose)
        incoming.read(work)
    check_stats_path(job.stats_path)
    started = time.perf_counter()
    planned: Estimate | None = None
    scored: Sequence[Result] | None = None
    failure: BaseException | None = None
    landed: dict[int, float] | None = {} if job.partial else None  # text position → score
    try:
        if isinstance(work, Incoming):
            with progress_bar(env, enabled=session.capabilities.remote) as on_progress:
                plan, scored = session.plan_and_score(
                    query, work.blocks, work.split, on_progress, verbose=job.verbose
                )
            work.read(plan)
        else:
            if job.dry_run or settings.max_docs is not None or settings.max_cost is not None:
                need_price = job.dry_run or settings.max_cost is not None
                planned = session.estimate(query, work, need_price=need_price)
                refusal = budget_refusal(planned, settings)
                if job.dry_run or refusal:
                    count_unscored(stats, work, planned)
                if job.dry_run:
                    report_dry_run(env, job, planned, refusal)
                    return ExitCode.OK
                if refusal:
                    raise UsageError(f"{refusal}; nothing was sent")
            planned = confirm_spending(env, session, query, work, job, planned)
            many = session.capabilities.remote and len(work.texts) > settings.batch_size
            with progress_bar(env, enabled=many) as on_progress:
                scored = session.score(query, work, on_progress, landed=landed)
    except BaseException as error:
        failure = error
        if isinstance(error, KeyboardInterrupt):
            env.info(interrupted(session))
        elif isinstance(error, ApiError) and landed is not None and isinstance(work, pipeline.Plan):
            show_partial(env, work, landed, job, emit, fmt)
        raise
    finally:
        if stats.elapsed == 0.0:  # scoring did not finish (or start): time what there was
            stats.elapsed = time.perf_counter() - started
        # -v sums up a scoring run (a dry run or a refusal has said its figures already);
        # --stats is written whatever happened: CI scripts parse it. The price is looked up
        # unless the network or the server has just failed (or Ctrl-C).
        if (job.verbose and scored is not None) or job.stats_path:
            lookup = failure is None or isinstance(failure, (ApiRefused, UsageError))
            if planned is not None and stats.sent == 0:
                cost = planned.cost  # a dry run or a refusal: what the run would have cost
            else:
                cost = run_cost(session, planned, lookup)
            if job.verbose and scored is not None:
                billed = session.capabilities.billed  # an offline engine costs nothing to say
                env.info(summary(stats, settings.engine, cost if billed else None))
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


def show_partial(
    env: Environment,
    work: pipeline.Plan,
    landed: dict[int, float],
    job: JobOptions,
    emit: Callable[[Sequence[Result], str], None],
    fmt: str,
) -> None:
    """--partial, when the API has failed: print the documents scored so far, ranked, then
    the others marked unscored (plain output, which has no place for a mark, leaves them
    out), and say so; the caller then fails with the API's error and exit code."""
    results = pipeline.partial(work, landed, job.filters)
    if job.quiet:
        return
    shown = [r for r in results if r.scored] if fmt == "plain" else results
    guard_output(lambda: emit(shown, fmt))
    total = len(work.documents)
    unscored = sum(not r.scored for r in results)
    how = "left out of plain output" if fmt == "plain" else "listed last, marked unscored"
    left = f"; the other {unscored:,} {how}" if unscored else ""
    env.info(f"--partial: {total - unscored:,} of {plural(total, 'document')} scored{left}")


def confirm_spending(
    env: Environment,
    session: Reranker,
    query: str,
    work: pipeline.Plan,
    job: JobOptions,
    planned: Estimate | None,
) -> Estimate | None:
    """On a terminal, a billed run that would send more than ``confirm_over`` documents asks
    first, showing the documents and the estimated price; -y skips the question, and a run
    with no terminal (a script, CI) is never asked."""
    limit = job.settings.confirm_over
    if job.yes or not limit or not env.stderr_isatty or not session.capabilities.billed:
        return planned
    if planned is None:  # what the cache leaves (its lookup serves the run); no price yet
        planned = session.estimate(query, work, need_price=False)
    return confirm_estimate(env, session, job, planned)


def asks_first(env: Environment, session: Reranker, job: JobOptions) -> bool:
    """Whether a run this large could be asked about (a billed engine, a terminal, no -y)."""
    limit = job.settings.confirm_over
    return bool(limit) and not job.yes and env.stderr_isatty and session.capabilities.billed


def confirm_estimate(
    env: Environment, session: Reranker, job: JobOptions, planned: Estimate
) -> Estimate:
    """:func:`confirm_spending` for an estimate already made (``rerank batch`` sums one per
    query): asks when it sends more than ``confirm_over`` documents."""
    limit = job.settings.confirm_over
    if not asks_first(env, session, job) or planned.to_send <= limit:
        return planned
    if planned.price_per_1k is None:
        price, note = session.price_per_1k()
        planned = replace(planned, price_per_1k=price, price_note=note)
    cost = "price unknown" if planned.cost is None else f"about ${planned.cost:,.2f}"
    question = (
        f"send {plural(planned.to_send, 'document')} to {job.settings.host} ({cost}; "
        f"confirm_over = {limit:,})?"
    )
    if env.ask(question) is False:
        raise NothingToShow("nothing sent (answered no; -y skips the question)")
    return planned


@contextmanager
def said_if_interrupted(env: Environment, session: Reranker) -> Iterator[None]:
    """Ctrl-C before scoring starts (reading a pipe or FIFO that never closes, planning) is
    said as it is during scoring — ``interrupted — nothing was scored`` — not in silence."""
    try:
        yield
    except KeyboardInterrupt:
        env.info(interrupted(session))
        raise


def interrupted(session: Reranker) -> str:
    """What Ctrl-C leaves behind: the scores already paid for, and whether a rerun gets them
    back from the cache."""
    sent = session.stats.sent
    if not sent:
        return "interrupted — nothing was scored"
    scores = plural(sent, "score")
    if session.capabilities.cacheable and session.settings.cache != "off":
        verb = "is" if sent == 1 else "are"
        return f"interrupted — {scores} {verb} cached; run the same command again to continue"
    billed = " (and billed)" if session.capabilities.billed else ""
    return f"interrupted — {scores} were made{billed} and not cached (the cache is off)"


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
