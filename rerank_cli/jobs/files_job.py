"""The ``rerank files`` job: walk → one document per file → score every chunk (a file scores as
its best chunk) → rank → write. The CLI parses options into a :class:`FilesJob`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

from rerank_cli.core.documents import Document, Result, Source
from rerank_cli.core.line_chunks import Chunker, LineChunker, splitter
from rerank_cli.errors import ExitCode, NothingToShow, UsageError
from rerank_cli.jobs import execution
from rerank_cli.jobs.execution import JobOptions
from rerank_cli.session import Reranker, check_query
from rerank_cli.sources import walk
from rerank_cli.terminal import Environment
from rerank_cli.words import plural


@dataclass(kw_only=True)
class FilesJob(JobOptions):
    query: str
    paths: list[str] = field(default_factory=list)  # none: the working directory
    walk_options: walk.WalkOptions = field(default_factory=walk.WalkOptions)
    chunker: Chunker = field(default_factory=LineChunker)
    null: bool = False  # -0: NUL-terminated paths (output None: table on a terminal, else jsonl)
    show_all: bool = False  # --all: no limit to the table on a terminal


# A table on a terminal shows this many files unless -k or --all says otherwise.
TERMINAL_ROWS = 20


def output_format(env: Environment, job: FilesJob) -> str:
    if job.null:
        if job.output not in (None, "plain"):
            raise UsageError("-0/--null goes with -o plain (paths only)")
        return "plain"
    return execution.output_format(env, job.output)


def documents(job: FilesJob, report: walk.WalkReport) -> Iterator[Document]:
    """One document per readable text file, in walk order (read as the walk reaches it)."""
    for found in walk.walk(job.paths, job.walk_options, report):
        loaded = walk.load(found, job.walk_options, report)
        if loaded is not None:
            yield Document(
                text=loaded.text,
                raw=os.fsencode(loaded.path) + b"\n",
                source=Source(loaded.path, None),
            )


def _secrets_warning(session: Reranker) -> str:
    remote = session.capabilities.remote
    where = f"sent to {session.settings.host}" if remote else "scored (offline engine)"
    return (
        "--include-secrets: files that may hold secrets (" + ", ".join(walk.SECRET_PATTERNS) + ") "
        f"will be read and {where}"
    )


def terminal_limit(env: Environment, job: FilesJob, fmt: str) -> int | None:
    """How many files the output may show without being asked: a table on a terminal is
    read, not piped, so it shows the best ``TERMINAL_ROWS``; anything else shows every file."""
    if job.show_all and job.filters.top_k is not None:
        raise UsageError("--all and -k/--top-k: give one of them")
    if fmt != "table" or not env.stdout_isatty or job.show_all or job.filters.top_k is not None:
        return None
    return TERMINAL_ROWS


def emit(
    env: Environment, job: FilesJob, limit: int | None, results: list[Result], fmt: str
) -> None:
    from rerank_cli.writers import WriteOptions
    from rerank_cli.writers import file_ranking as files_writer

    more = 0
    if limit is not None and len(results) > limit:
        results, more = results[:limit], len(results) - limit
    options = WriteOptions(width=env.width, color=env.stdout_color, null=job.null)
    files_writer.write(results, fmt, env.stdout, options, query=job.query)
    if more:
        env.info(f"… {more} more; -k N or --all to see them")


def run(env: Environment, job: FilesJob) -> ExitCode:
    fmt = output_format(env, job)
    limit = terminal_limit(env, job, fmt)
    # Before the walk: a missing key or an insecure URL fails at once, not after a long walk.
    check_query(job.query)  # a usage error, before the key is asked for (exit 3)
    with execution.open_session(env, job) as session:
        walk.check_paths(job.paths)  # a missing path is exit 2 before anything is sent
        if job.walk_options.include_secrets:
            env.warn(_secrets_warning(session))
        report = walk.WalkReport(on_warning=env.warn)
        found = documents(job, report)
        work = session.plan(job.query, found, splitter(job.chunker), verbose=job.verbose)
        if job.verbose:
            skipped = report.summary(job.walk_options.max_filesize)
            files, chunks = plural(len(work.documents), "file"), plural(len(work.units), "chunk")
            env.info(f"{files}, {chunks}; {skipped}")
        if not work.documents:
            skipped = report.summary(job.walk_options.max_filesize)
            why = "" if job.verbose or skipped == "skipped nothing" else f" ({skipped})"
            raise NothingToShow(f"no files to rank{why}")
        emit_files = partial(emit, env, job, limit)
        return execution.execute(env, session, job.query, work, job, emit_files, fmt)
