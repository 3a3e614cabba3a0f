"""The rank job: gather documents from every input, score them, rank, write. The CLI parses
options into a :class:`RankJob`; everything after that happens here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_cli import config, pipeline, readers, writers
from rerank_cli.api import make_engine
from rerank_cli.documents import Document, Result
from rerank_cli.engines.base import Stats
from rerank_cli.errors import ExitCode, InputError, NothingToShow, OutputClosed, UsageError
from rerank_cli.redact import register_secret
from rerank_cli.settings import Settings, resolve
from rerank_cli.terminal import Environment

STDIN_NAME = "<stdin>"


def settings_for(env: Environment, **options: Any) -> Settings:
    """Options → environment → config file → defaults; the key is registered for redaction."""
    path = config.config_path(env.env)
    settings = resolve(options, env.env, config.load(path), config_origin=str(path))
    register_secret(settings.api_key)
    return settings


@dataclass
class RankJob:
    query: str
    arguments: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    read_options: readers.ReadOptions = field(default_factory=readers.ReadOptions)
    settings: Settings = field(default_factory=Settings)
    output: str | None = None  # None: table on a terminal, else jsonl
    filters: pipeline.Filters = field(default_factory=pipeline.Filters)
    quiet: bool = False
    verbose: bool = False


def read_input(env: Environment, name: str) -> tuple[str, bytes]:
    """(display name, bytes) of one ``-i`` input; ``-`` is stdin."""
    if name == "-":
        return STDIN_NAME, env.stdin.read()
    path = Path(name)
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


def collect(env: Environment, job: RankJob, report: readers.ReadReport) -> list[Document]:
    """Every document, numbered in input order: arguments first, then each input."""

    def sources() -> Iterator[Document]:
        for text in job.arguments:
            yield Document(text=text, raw=text.encode("utf-8", errors="surrogateescape") + b"\n")
        inputs = job.inputs
        if not job.arguments and not inputs:
            if env.stdin_isatty:
                raise UsageError(
                    "no documents: give them as arguments, with -i FILE, or on stdin "
                    "(e.g. rg -n TODO | rerank 'query'); see rerank --help"
                )
            inputs = ["-"]
        for name in inputs:
            shown, data = read_input(env, name)
            yield from readers.read(data, shown, job.read_options, report)

    documents = list(sources())
    for index, document in enumerate(documents):
        document.index = index
    return documents


def output_format(env: Environment, job: RankJob) -> str:
    if job.output is not None:
        return job.output
    return "table" if env.stdout_isatty else "jsonl"


def write(env: Environment, results: list[Result], fmt: str) -> None:
    options = writers.WriteOptions(width=env.width, color=env.stdout_color)
    try:
        writers.write(results, fmt, env.stdout, options)
    except BrokenPipeError:
        raise OutputClosed() from None


def summary(stats: Stats, engine: str) -> str:
    rate = stats.sent / stats.elapsed if stats.elapsed > 0 else 0.0
    parts = [
        f"{stats.documents} documents",
        f"{stats.unique} unique",
        f"{stats.sent} scored by {engine}",
        f"{stats.requests} requests",
        f"{stats.retries} retries",
        f"{stats.elapsed:.2f} s",
        f"{rate:,.0f} docs/s",
    ]
    if stats.skipped:
        parts.insert(1, f"{stats.skipped} skipped")
    return ", ".join(parts)


def run(env: Environment, job: RankJob) -> ExitCode:
    report = readers.ReadReport(on_warning=env.warn)
    documents = collect(env, job, report)
    stats = Stats(documents=len(documents), skipped=report.skipped)
    if not documents:
        raise NothingToShow("no documents to rank")
    notify: Callable[[str], None] | None = env.info if job.verbose else None
    settings = job.settings
    engine = make_engine(settings, stats, notify=notify)
    from rerank_cli.terminal import progress_bar

    batches = -(-len(documents) // settings.batch_size)
    with progress_bar(env, enabled=batches > 1 and settings.engine == "api") as on_progress:
        scored = asyncio.run(
            pipeline.score_documents(job.query, documents, engine, stats, on_progress=on_progress)
        )
    results = pipeline.rank(scored, job.filters)
    if job.verbose:
        env.info(summary(stats, engine.name))
    if not results:
        if job.quiet:
            return ExitCode.NOTHING_TO_SHOW
        raise NothingToShow("no results left after --top-k/--min-score")
    if not job.quiet:
        write(env, results, output_format(env, job))
    return ExitCode.OK
