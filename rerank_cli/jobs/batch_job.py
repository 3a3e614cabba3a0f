"""The ``rerank batch`` job: many queries, each with its documents, ranked on ONE session (one
event loop, one connection pool of ``-j`` connections, one score cache), each query's line
written whole and flushed as the query completes.

Lines that share a query and an instruction are scored as one plan, so a (query, document)
pair that appears twice in the file is scored — and billed — once; each line is then ranked on
its own documents, exactly as ``rerank rank`` would rank them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from rerank_cli.core import pipeline
from rerank_cli.core.budget import Estimate, budget_refusal
from rerank_cli.core.documents import Document, Result
from rerank_cli.errors import (
    ApiError,
    ApiFailed,
    ApiRefused,
    ExitCode,
    InputError,
    NothingToShow,
    UsageError,
)
from rerank_cli.jobs import execution
from rerank_cli.jobs.execution import JobOptions, open_session
from rerank_cli.jobs.rank_job import read_input
from rerank_cli.session import Reranker
from rerank_cli.settings.schema import Settings
from rerank_cli.sources.corpus import (
    DEFAULT_DEPTH,
    Candidate,
    candidate_indexes,
    read_corpus,
    read_run,
)
from rerank_cli.sources.queries import Query, SharedDocuments, id_key, read_queries, shard_of
from rerank_cli.sources.records import ReadOptions, ReadReport
from rerank_cli.terminal import Environment
from rerank_cli.words import plural
from rerank_cli.writers import runs


@dataclass(kw_only=True)
class BatchJob(JobOptions):
    input: str  # a file, or "-" for stdin
    read_options: ReadOptions = field(default_factory=ReadOptions)
    out: str | None = None  # --out FILE; None: stdout
    resume: bool = False
    shard: tuple[int, int] | None = None  # (K, N)
    fail_fast: bool = False
    with_text: bool = True  # --no-text leaves the documents' text out of jsonl
    corpus: str | None = None  # --corpus FILE: the documents of every query
    corpus_options: ReadOptions = field(default_factory=ReadOptions)  # -F, --field, --id-field
    candidates: str | None = None  # --candidates RUN: per query, the corpus ids to rerank
    depth: int | None = None  # --depth N: the run's top N per query (default 100)
    # For ``rerank eval --dataset``, which builds the inputs itself: INPUT's bytes (``input``
    # is then only its name), the candidates per query in place of reading --candidates (named
    # ``candidates_name`` in messages), and where each query's output goes in place of --out.
    input_data: bytes | None = None
    candidates_run: dict[str, list[Candidate]] | None = None
    candidates_name: str = "candidates"
    sink: Callable[[bytes], None] | None = None


@dataclass
class Group:
    """Lines with the same query and instruction: scored as one plan."""

    query: str
    settings: Settings
    lines: list[Query]
    work: pipeline.Plan | None = None

    @property
    def documents(self) -> int:
        return sum(len(line.documents) for line in self.lines)


@dataclass
class Tally:
    queries: int = 0  # in the file
    other_shards: int = 0
    resumed: int = 0  # complete in --out already
    done: int = 0
    failed: int = 0
    refused: int = 0  # failures that were refusals (exit 3)

    def describe(self) -> str:
        parts = [plural(self.queries, "query")]
        if self.other_shards:
            parts.append(f"{self.other_shards:,} in other shards")
        if self.resumed:
            parts.append(f"{self.resumed:,} done before (--resume)")
        parts.append(f"{self.done:,} ranked")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, int]:
        return {
            "queries": self.queries,
            "other_shards": self.other_shards,
            "resumed": self.resumed,
            "ranked": self.done,
            "failed": self.failed,
        }


def check_options(job: BatchJob, fmt: str) -> None:
    if job.resume and job.out is None:
        raise UsageError("--resume needs --out FILE: the file it resumes")
    if job.out is not None and job.out == job.input:
        raise UsageError("--out must not be the input file")
    if job.candidates is not None and job.corpus is None:
        raise UsageError("--candidates needs --corpus FILE: the texts of the ids it names")
    if job.depth is not None and job.candidates is None:
        raise UsageError("--depth needs --candidates RUN: it cuts each query's candidates")
    if job.depth is not None and job.depth < 1:
        raise UsageError(f"--depth takes a whole number ≥ 1, got {job.depth}")


def run(env: Environment, job: BatchJob) -> ExitCode:
    fmt = job.output or "jsonl"
    check_options(job, fmt)
    execution.check_stats_path(job.stats_path)
    with open_session(env, job) as session:
        report = ReadReport(on_warning=env.warn)
        with execution.said_if_interrupted(env, session):  # a pipe or FIFO that never closes
            shared = shared_documents(env, job, report)
            if job.input_data is not None:
                name, data = job.input, job.input_data
            else:
                name, data = read_input(env, job.input)
            queries = read_queries(data, name, job.read_options, report, shared)
        if job.candidates is not None:
            empty = sum(not query.documents for query in queries)
            if empty:
                env.warn(
                    f"{plural(empty, 'query')} with no candidates in {job.candidates}: "
                    "written with no results"
                )
        if fmt == "trec":
            check_trec_ids(queries, name)
        session.stats.skipped = report.skipped
        if not queries:
            raise NothingToShow(f"no queries in {name}")
        tally = Tally(queries=len(queries))
        if job.shard is not None:
            shard, shards = job.shard
            mine = [q for q in queries if shard_of(q.key, shards) == shard]
            tally.other_shards = len(queries) - len(mine)
            queries = mine
        kept: Resumed | None = None
        if job.resume and job.out is not None:
            before = len(queries)
            if fmt == "trec":
                kept = scan_trec_output(Path(job.out))
                queries = [q for q in queries if runs.trec_id(q.id).encode() not in kept.done]
            else:
                kept = scan_output(Path(job.out))
                queries = [q for q in queries if q.key not in kept.done]
            tally.resumed = before - len(queries)
        groups = plan_groups(session, queries)
        return _run(env, session, job, fmt, groups, tally, kept)


def shared_documents(env: Environment, job: BatchJob, report: ReadReport) -> SharedDocuments | None:
    """--corpus (and --candidates): what gives each query line its documents; read and checked
    whole before anything is sent."""
    if job.corpus is None:
        return None
    shown, data = read_input(env, job.corpus)
    corpus = read_corpus(data, shown, job.corpus_options, report)
    if job.candidates_run is not None:
        run_name, run = job.candidates_name, job.candidates_run
    elif job.candidates is None:
        return lambda query_id, line: (corpus.copies(), None)
    else:
        run_name, run_data = read_input(env, job.candidates)
        run = read_run(run_data, run_name, report)
    depth: int | None = job.depth
    if depth is None and job.candidates_run is None:
        depth = DEFAULT_DEPTH  # given candidates (eval --dataset's judged documents): all

    def candidates(query_id: object, line: int) -> tuple[list[Document], list[int] | None]:
        qid = runs.trec_id(query_id)
        indexes = candidate_indexes(corpus, run_name, qid, run.get(qid, []), depth)
        return corpus.copies(indexes), indexes

    return candidates


def check_trec_ids(queries: list[Query], name: str) -> None:
    """A TREC run is split on whitespace: ids holding any cannot be written."""
    for query in queries:
        if any(c.isspace() for c in runs.trec_id(query.id)) or not runs.trec_id(query.id):
            raise InputError(
                f"id {query.key.decode()} is empty or holds whitespace (-o trec)", name, query.line
            )
        for document in query.documents:
            if document.id is not None and (
                not runs.trec_id(document.id) or any(c.isspace() for c in runs.trec_id(document.id))
            ):
                raise InputError(
                    f"document id {id_key(document.id).decode()} is empty or holds whitespace "
                    "(-o trec)",
                    name,
                    query.line,
                )


def plan_groups(session: Reranker, queries: list[Query]) -> list[Group]:
    """One group per (query, instruction), in file order, each planned once: the union of its
    lines' documents, deduplicated."""
    settings_of: dict[str | None, Settings] = {}
    groups: dict[tuple[str, str | None], Group] = {}
    for query in queries:
        instruction = query.instruction
        if instruction not in settings_of:
            settings_of[instruction] = session.settings_for(instruction=instruction)
        key = (query.query, instruction)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(query.query, settings_of[instruction], [])
        group.lines.append(query)
    for group in groups.values():
        documents = [document for line in group.lines for document in line.documents]
        group.work = session.plan(group.query, documents, settings=group.settings)
    return list(groups.values())


def _run(
    env: Environment,
    session: Reranker,
    job: BatchJob,
    fmt: str,
    groups: list[Group],
    tally: Tally,
    kept: Resumed | None,
) -> ExitCode:
    settings = job.settings
    stats = session.stats
    started = time.perf_counter()
    planned: Estimate | None = None
    ranked = False
    failure: BaseException | None = None
    try:
        wants_estimate = (
            job.dry_run
            or settings.max_docs is not None
            or settings.max_cost is not None
            or execution.asks_first(env, session, job)
        )
        if wants_estimate:
            need_price = job.dry_run or settings.max_cost is not None
            planned = estimate(session, groups, need_price)
            refusal = budget_refusal(planned, settings)
            if job.dry_run or refusal:
                count_unscored(session, groups, planned)
            if job.dry_run:
                report_dry_run(env, job, tally, planned, refusal)
                return ExitCode.OK
            if refusal:
                raise UsageError(f"{refusal}; nothing was sent")
            planned = execution.confirm_estimate(env, session, job, planned)
        with open_output(env, job, kept) as write:
            stats.elapsed = 0.0
            rank_all(env, session, job, fmt, groups, tally, write)
            stats.elapsed = time.perf_counter() - started  # queries overlap: the wall clock
        ranked = True
    except BaseException as error:
        failure = error
        if isinstance(error, KeyboardInterrupt):
            env.info(execution.interrupted(session))
        raise
    finally:
        if stats.elapsed == 0.0:
            stats.elapsed = time.perf_counter() - started
        if (job.verbose and ranked) or job.stats_path:
            lookup = failure is None or isinstance(failure, (ApiRefused, UsageError))
            if planned is not None and stats.sent == 0:
                cost = planned.cost
            else:
                cost = execution.run_cost(session, planned, lookup)
            if job.verbose and ranked:
                env.info(f"{tally.describe()}; {execution.summary(stats, settings.engine, cost)}")
            if job.stats_path:
                data = {
                    **tally.as_dict(),
                    **execution.usage(stats, cost),
                    "run": run_record(session, job, groups),
                }
                execution.report_stats(env, job.stats_path, data, failure is not None)
    if tally.failed:
        where = f" (their error lines are in {job.out})" if job.out else ""
        message = f"{plural(tally.failed, 'query')} of {tally.failed + tally.done:,} failed{where}"
        raise ApiRefused(message) if tally.refused == tally.failed else ApiFailed(message)
    if not groups and not job.quiet:
        env.info("no queries to rank (" + tally.describe() + ")")
    return ExitCode.OK


def run_record(session: Reranker, job: BatchJob, groups: list[Group]) -> dict[str, object]:
    """What makes the run reproducible, for --stats: the version, where the scores came from
    (the profile, the endpoint's host — never credentials or the key), the model, the
    instruction and how it was delivered, the prompt template's hash, the long-document
    settings, the cache, and the inputs' names."""
    import hashlib

    from rerank_cli import __version__
    from rerank_cli.providers.instructions import template_text

    settings = session.settings
    remote = session.capabilities.remote
    mode = settings.instruction_mode
    own = sum(1 for group in groups for line in group.lines if line.instruction is not None)
    template = template_text(mode) if remote else None
    if mode == "query" and not settings.instruction and not own:
        template = None  # query mode without an instruction sends the query alone
    return {
        "rerank_version": __version__,
        "engine": settings.engine,
        "profile": settings.profile.name if remote else None,
        "endpoint_host": settings.host if remote else None,
        "model": settings.model if remote else None,
        "instruction": settings.instruction,
        "task": settings.task,
        "line_instructions": own,  # queries with their own "instruction"
        "instruction_mode": mode if remote else None,
        "template_sha256": (
            hashlib.sha256(template.encode("utf-8")).hexdigest() if template is not None else None
        ),
        "max_tokens": settings.max_tokens,
        "long": settings.long,
        "chunk_overlap": settings.chunk_overlap,
        "cache": settings.cache,
        "cache_hits": session.stats.cache_hits,
        "input": job.input,
        "corpus": job.corpus,
        "candidates": job.candidates,
        "depth": (job.depth or DEFAULT_DEPTH) if job.candidates is not None else None,
        "shard": f"{job.shard[0]}/{job.shard[1]}" if job.shard is not None else None,
    }


def estimate(session: Reranker, groups: list[Group], need_price: bool) -> Estimate:
    """The whole file's estimate: the sum of each group's (what the cache leaves, after the
    in-run dedup)."""
    total = Estimate(0, 0, 0, 0, 0, 0.0 if not session.capabilities.billed else None)
    for group in groups:
        assert group.work is not None
        one = session.estimate(group.query, group.work, need_price=False, settings=group.settings)
        total.documents += group.documents
        total.unique += one.unique
        total.cached += one.cached
        total.to_send += one.to_send
        total.requests += one.requests
    if session.capabilities.billed and need_price and total.to_send:
        total.price_per_1k, total.price_note = session.price_per_1k()
    return total


def count_unscored(session: Reranker, groups: list[Group], planned: Estimate) -> None:
    stats = session.stats
    for group in groups:
        assert group.work is not None
        stats.texts += len(group.work.units)
    stats.unique += planned.unique
    stats.cache_hits += planned.cached


def report_dry_run(
    env: Environment, job: BatchJob, tally: Tally, planned: Estimate, refusal: str | None
) -> None:
    if job.output == "jsonl":  # asked for: the report is the data
        data = {**tally.as_dict(), **planned.as_dict(), "refused": refusal}
        execution.guard_output(lambda: env.stdout.write(orjson.dumps(data) + b"\n"))
        return
    env.info(
        f"dry run: {plural(tally.queries - tally.other_shards - tally.resumed, 'query')}; "
        + planned.text().removeprefix("dry run: ")
    )
    if refusal:
        env.warn(f"the real run would stop: {refusal}")


# -- ranking


def rank_all(
    env: Environment,
    session: Reranker,
    job: BatchJob,
    fmt: str,
    groups: list[Group],
    tally: Tally,
    write: Callable[[bytes], None],
) -> None:
    """Score the groups concurrently (:func:`score_groups`) and write each query as it
    completes."""
    from rerank_cli.terminal import progress_bar

    if not groups:
        return
    total = sum(len(group.lines) for group in groups)
    scoring = score_groups(session, groups, job.filters)
    with closing(scoring), progress_bar(env, enabled=total > 1) as on_progress:
        for group, outcome in scoring:
            if isinstance(outcome, ApiError):
                error = outcome
                for line in group.lines:
                    if fmt == "jsonl":  # a TREC run has no place for it
                        code = int(error.exit_code)
                        write(
                            runs.error_line(line.id, line.query, code, error.message, error.status)
                        )
                    env.warn(f"query {line.key.decode()}: {error.message}")
                tally.failed += len(group.lines)
                if isinstance(error, ApiRefused):
                    tally.refused += len(group.lines)
                if job.fail_fast or stops_run(error):
                    raise error
            else:
                for line, results in outcome:
                    if fmt == "trec":
                        write(runs.trec_lines(line.id, results))
                    else:
                        write(runs.query_line(line.id, line.query, results, job.with_text))
                tally.done += len(outcome)
            if on_progress is not None:
                on_progress(tally.done + tally.failed, total)


Ranked = list[tuple[Query, list[Result]]]


def stops_run(error: ApiError) -> bool:
    """A rejected key (401) or an empty account (402) fails every query alike: the run stops
    at the first, --fail-fast or not."""
    return error.status in (401, 402)


def score_groups(
    session: Reranker, groups: list[Group], filters: pipeline.Filters
) -> Generator[tuple[Group, Ranked | ApiError], None, None]:
    """Score the groups concurrently — a few threads, each waiting on the session's one loop;
    the HTTP concurrency stays the session's ``-j`` — and yield each group as it completes,
    with its lines ranked (:func:`score_group`) or the :class:`ApiError` that failed it.
    Closing the generator early cancels the groups not started."""
    if not groups:
        return
    workers = min(len(groups), max(4, 2 * session.settings.concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rerank-batch")
    try:
        running: dict[Future[Ranked], Group] = {
            pool.submit(score_group, session, group, filters): group for group in groups
        }
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                group = running.pop(future)
                try:
                    ranked = future.result()
                except ApiError as error:
                    yield group, error
                else:
                    yield group, ranked
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def score_group(session: Reranker, group: Group, filters: pipeline.Filters) -> Ranked:
    """Score a group's plan on the session, then rank each of its lines on its own documents
    (indexes from 0 within the line, as ``rerank rank`` numbers them)."""
    assert group.work is not None
    scored = session.score(group.query, group.work, settings=group.settings)
    out = []
    start = 0
    for line in group.lines:
        own = scored[start : start + len(line.documents)]
        for result in own:
            result.document.index -= start
        ranked = list(pipeline.rank(own, filters))  # ties: the line's order (the run's)
        if line.corpus_index is not None:  # --candidates: report the corpus index
            for result in ranked:
                result.document.index = line.corpus_index[result.document.index]
        out.append((line, ranked))
        start += len(line.documents)
    return out


# -- the output file, and --resume


@dataclass
class Resumed:
    """What --out holds already: the ids complete in it, and whether anything must go (a torn
    last line, error lines, lines that are not a query's result)."""

    done: set[bytes] = field(default_factory=set)
    keep: list[bytes] = field(default_factory=list)
    clean: bool = True
    # A TREC run is cut, not rewritten: its first ``length`` bytes are kept.
    length: int | None = None


def read_out(path: Path) -> bytes:
    """What --out holds (nothing when it is not there yet: a fresh run)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as error:
        raise UsageError(f"cannot read --out file {path}: {error.strerror}") from None


def scan_output(path: Path) -> Resumed:
    """Read --out for --resume: a line is complete when it ends with a newline and is a JSON
    object with an ``id`` and a ``results`` list. A torn last line (a kill mid-write) and error
    lines are dropped, so their queries are done again."""
    found = Resumed()
    for line in read_out(path).splitlines(keepends=True):
        complete = False
        if line.endswith(b"\n"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            complete = (
                isinstance(value, dict) and "id" in value and isinstance(value.get("results"), list)
            )
        if complete:
            assert isinstance(value, dict)
            found.done.add(id_key(value["id"]))
            found.keep.append(line)
        elif line.strip():
            found.clean = False
    return found


def scan_trec_output(path: Path) -> Resumed:
    """Read a TREC run --out for --resume. A query's lines are written together, so only the
    last block can be torn, yet nothing in a run says how many lines a query has: the last
    query written is always done again (its block is cut off), the ones before are kept. A
    line that is not ``qid Q0 docid rank score tag`` before the end means the file is not
    this command's run: refused rather than cut."""
    found = Resumed(length=0)
    lines = read_out(path).splitlines(keepends=True)
    offset = 0
    block: bytes | None = None  # the qid of the block being read
    block_start = 0
    for number, line in enumerate(lines, 1):
        fields = line.split()
        whole = line.endswith(b"\n") and len(fields) == 6 and fields[1] == b"Q0"
        if not whole:
            if number == len(lines):  # a torn last line
                break
            raise UsageError(
                f"--out file {path}:{number} is not a TREC run line (qid Q0 docid rank score "
                "tag): not resuming into it"
            )
        if fields[0] != block:
            if block is not None:
                found.done.add(block)
            block, block_start = fields[0], offset
        offset += len(line)
    found.length = block_start if block is not None else 0
    return found


@contextmanager
def open_output(
    env: Environment, job: BatchJob, kept: Resumed | None
) -> Iterator[Callable[[bytes], None]]:
    """A writer of whole query lines, each flushed: stdout, or --out (emptied first; with
    --resume, kept — rewritten without its torn or failed lines when it has any)."""
    if job.sink is not None:
        yield job.sink
        return
    if job.out is None:

        def to_stdout(data: bytes) -> None:
            if data:
                execution.guard_output(lambda: (env.stdout.write(data), env.stdout.flush()))

        yield to_stdout
        return
    path = Path(job.out)
    try:
        if kept is not None and kept.length is not None:
            if path.exists():
                os.truncate(path, kept.length)
        elif kept is not None and not kept.clean:
            replace_file(path, b"".join(kept.keep))
        stream: IO[bytes] = open(path, "ab" if kept is not None else "wb", buffering=0)  # noqa: SIM115
    except OSError as error:
        raise UsageError(f"cannot write --out file {path}: {error.strerror}") from None

    def to_file(data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = stream.write(view)
                view = view[written or 0 :]
        except OSError as error:
            raise UsageError(f"cannot write --out file {path}: {error.strerror}") from None

    try:
        yield to_file
    finally:
        stream.close()


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, renamed)."""
    temporary = path.with_name(f".{path.name}.rerank-{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
