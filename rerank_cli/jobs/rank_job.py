"""The rank job: gather documents from every input, score them, rank, write. The CLI parses
options into a :class:`RankJob`; everything after that happens here."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

from rerank_cli import sources as readers
from rerank_cli import writers
from rerank_cli.core.documents import Document, Result
from rerank_cli.core.pipeline import Plan
from rerank_cli.errors import ExitCode, InputError, NothingToShow, UsageError
from rerank_cli.jobs.execution import Incoming, JobOptions, execute, open_session, output_format
from rerank_cli.session import check_query
from rerank_cli.sources.records import is_blank
from rerank_cli.terminal import Environment

STDIN_NAME = "<stdin>"


@dataclass(kw_only=True)
class RankJob(JobOptions):
    query: str
    arguments: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    read_options: readers.ReadOptions = field(default_factory=readers.ReadOptions)


def read_input(env: Environment, name: str) -> tuple[str, bytes]:
    """(display name, bytes) of one ``-i`` input; ``-`` is stdin."""
    if name == "-":
        return STDIN_NAME, env.stdin.read()
    path = Path(name)
    # Names are shown (and written as JSON) as text: undecodable bytes become U+FFFD.
    name = os.fsencode(name).decode("utf-8", "replace")
    try:
        return name, path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", name) from None
    except IsADirectoryError:
        raise InputError("is a directory (to rank files, use: rerank files)", name) from None
    except PermissionError:
        raise InputError("permission denied", name) from None
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror})", name) from None


CHUNK = 1 << 16  # bytes per read of a pipe, at most


def _chunks(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """What each read gives, as soon as it gives it (a pipe's reads return what has arrived)."""
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(CHUNK)
        except OSError as error:
            raise InputError(f"cannot read ({error.strerror})", name) from None
        if not chunk:
            return
        yield chunk


def blocks(
    env: Environment, job: RankJob, report: readers.ReadReport
) -> Iterator[Sequence[Document]]:
    """Every document, in input order and in blocks: the arguments first, then each input
    (opened as it is reached), a block per run of lines as it arrives."""
    given: list[Document] = []
    for text in job.arguments:
        if is_blank(text):
            report.skip_blank()  # an empty or blank argument is never sent, as blank lines
            continue
        # Python hands over undecodable argv bytes as lone surrogates: keep the bytes for
        # plain output, score the text with U+FFFD, as for files.
        raw = text.encode("utf-8", errors="surrogateescape")
        given.append(Document(text=report.decode(raw, "arguments"), raw=raw + b"\n"))
    if given:
        yield given
    inputs = job.inputs
    if not job.arguments and not inputs:
        if env.stdin_isatty:
            raise UsageError(
                "no documents: give them as arguments, with -i FILE, or on stdin "
                "(e.g. rg -n TODO | rerank 'query'); see rerank --help"
            )
        inputs = ["-"]
    for name in inputs:
        if name == "-":  # read as it arrives
            chunks = _chunks(env.stdin, STDIN_NAME)
            yield from readers.read_blocks(chunks, STDIN_NAME, job.read_options, report)
        else:  # a file has arrived whole
            shown, data = read_input(env, name)
            yield from readers.in_blocks(readers.read(data, shown, job.read_options, report))


def documents(env: Environment, job: RankJob, report: readers.ReadReport) -> Iterator[Document]:
    """Every document, in input order: arguments first, then each input (read as it is
    reached)."""
    for block in blocks(env, job, report):
        yield from block


def emit(env: Environment, results: Sequence[Result], fmt: str) -> None:
    writers.write(results, fmt, env.stdout, writers.WriteOptions(env.width, env.stdout_color))


def run(env: Environment, job: RankJob) -> ExitCode:
    # The session checks the key (and that it would not travel in clear text) before any
    # input is read.
    check_query(job.query)  # a usage error, before the key is asked for (exit 3)
    with open_session(env, job) as session:
        report = readers.ReadReport(on_warning=env.warn)

        def read(work: Plan) -> None:
            if not work.documents:
                raise NothingToShow("no documents to rank")
            session.stats.skipped = report.skipped

        fmt = output_format(env, job.output)
        arriving = "-" in job.inputs or not (job.arguments or job.inputs)  # stdin
        incoming = Incoming(blocks(env, job, report), read=read, arriving=arriving)
        return execute(env, session, job.query, incoming, job, partial(emit, env), fmt)
