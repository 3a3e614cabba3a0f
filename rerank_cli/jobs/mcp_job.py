"""``rerank mcp``: one session for the server's life, and what its tools do — rank a list of
documents, or the files under the server's working root — without the protocol, which lives in
``rerank_cli.integrations.mcp_server`` (the optional ``mcp`` extra).

Every call is checked before anything is sent: the per-call budget (``mcp_max_docs``, counted
as the documents or file chunks that would be scored, before dedup and cache), the CLI's own
``max_docs``/``max_cost`` when set, and for files the working root (paths resolved, symlinks
included) and the walk's secret list. Errors are the CLI's exception tree, their messages
already redacted; the server turns them into tool errors and keeps running.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerank_cli.core import pipeline
from rerank_cli.core.documents import Document, Result
from rerank_cli.errors import ExitCode, UsageError
from rerank_cli.session import Reranker, check_query
from rerank_cli.terminal import Environment
from rerank_cli.words import plural

if TYPE_CHECKING:
    from rerank_cli.settings.schema import Settings

EXTRA = "pip install 'rerank-cli[mcp]'"


@dataclass(frozen=True)
class Answer:
    """A tool's answer: the structured record (its output schema) and the compact text form."""

    structured: dict[str, Any]
    text: str


class OverBudget(UsageError):
    """A call that would score more than the server's per-call limit: nothing was sent."""


class OutsideRoot(UsageError):
    """A path that leads out of the server's working root."""


def clean(text: str) -> str:
    """JSON may carry lone surrogates (``"\\ud800"``), which no request can encode: U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class AgentTools:
    """The tools, on one session. ``root``: the directory ``rank_files`` may read (the
    server's working directory, where relative paths start); ``max_docs``: the per-call
    limit."""

    def __init__(self, session: Reranker, root: str, max_docs: int) -> None:
        self.session = session
        self.root = os.path.realpath(root)
        self.max_docs = max_docs

    # -- rank

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int = 10,
        instruction: str | None = None,
    ) -> Answer:
        """``documents`` ranked for ``query``; each result keeps its index in ``documents``
        (blank ones are counted there but never sent)."""
        from rerank_cli.sources.records import is_blank
        from rerank_cli.writers import tool_answers

        query = clean(query)
        check_query(query)
        _check_top_k(top_k)
        given = [
            Document(text=clean(text), raw=b"", id=index)
            for index, text in enumerate(documents)
            if not is_blank(text)
        ]
        if not given:
            return Answer(tool_answers.ranked_documents([], 0), "no documents to rank")
        # Each document is at least one text to score: a list over the budget is refused
        # before its long documents are counted in tokens.
        self._check_budget(len(given), plural(len(given), "document"), "documents")
        settings = self.session.settings_for(instruction=instruction or None)
        work = self.session.plan(query, given, settings=settings)
        self._check_budget(len(work.units), plural(len(work.units), "document"), "documents")
        results = self._score(query, work, settings, top_k)
        return Answer(
            tool_answers.ranked_documents(results, len(given)),
            tool_answers.documents_text(results, len(given)),
        )

    # -- rank_files

    def rank_files(
        self,
        query: str,
        paths: Sequence[str] | None = None,
        glob: str | Sequence[str] | None = None,
        top_k: int = 10,
    ) -> Answer:
        """The files under ``paths`` (inside the root) ranked by their best chunk, walked as
        ``rerank files`` walks them: ignore files, hidden files, binary and large files and
        likely secrets left out."""
        from rerank_cli.core.line_chunks import LineChunker, splitter
        from rerank_cli.jobs import files_job
        from rerank_cli.sources import walk
        from rerank_cli.writers import tool_answers

        query = clean(query)
        check_query(query)
        _check_top_k(top_k)
        globs = (glob,) if isinstance(glob, str) else tuple(glob or ())
        job = files_job.FilesJob(
            query=query,
            paths=inside_root(self.root, paths or ["."]),
            walk_options=walk.WalkOptions(globs=globs),
            chunker=LineChunker(),
        )
        walk.check_paths(job.paths)  # a missing path is an error, before anything is read
        report = walk.WalkReport()  # warnings are summed up in "skipped", not printed
        found = self._few_files(files_job.documents(job, report))
        work = self.session.plan(query, found, splitter(job.chunker))
        skipped = report.summary(job.walk_options.max_filesize)
        files, chunks = len(work.documents), len(work.units)
        if not files:
            why = "" if skipped == "skipped nothing" else f" ({skipped})"
            return Answer(tool_answers.ranked_files([], 0, 0, skipped), f"no files to rank{why}")
        what = f"{plural(chunks, 'chunk')} of {plural(files, 'file')}"
        self._check_budget(chunks, what, "file chunks", " Narrow paths or glob.")
        results = self._score(query, work, self.session.settings, top_k)
        return Answer(
            tool_answers.ranked_files(results, files, chunks, skipped),
            tool_answers.files_text(results, files, chunks, query),
        )

    # -- shared

    def _few_files(self, documents: Iterable[Document]) -> Iterator[Document]:
        """Stop the walk once it has found more files than the budget allows (each file is at
        least one chunk), rather than read a whole tree only to refuse it."""
        for count, document in enumerate(documents, 1):
            if count > self.max_docs:
                what = f"more than {plural(self.max_docs, 'file')}"
                self._check_budget(count, what, "file chunks", " Narrow paths or glob.")
            yield document

    def _check_budget(self, count: int, what: str, unit: str, advice: str = "") -> None:
        if count > self.max_docs:
            raise OverBudget(
                f"refused: this call would score {what}, over this server's limit of "
                f"{self.max_docs:,} {unit} per call (rerank mcp --max-docs N, config "
                f"mcp_max_docs); nothing was sent.{advice}"
            )

    def _score(
        self, query: str, work: pipeline.Plan, settings: Settings, top_k: int
    ) -> Sequence[Result]:
        """Score under the CLI's own budgets when set (max_docs, max_cost: after dedup and
        cache), then rank and keep the best ``top_k``."""
        from rerank_cli.core.budget import budget_refusal

        if settings.max_docs is not None or settings.max_cost is not None:
            planned = self.session.estimate(
                query, work, need_price=settings.max_cost is not None, settings=settings
            )
            refusal = budget_refusal(planned, settings)
            if refusal:
                raise OverBudget(f"{refusal}; nothing was sent")
        scored = self.session.score(query, work, settings=settings)
        return pipeline.rank(scored, pipeline.Filters(top_k=top_k))


def inside_root(root: str, paths: Iterable[str]) -> list[str]:
    """``paths`` as the walk takes them — relative to ``root`` (a real path: no symlink in
    it), resolved, symlinks included — or :class:`OutsideRoot` for the first that leads out of
    it. Relative paths start at ``root``, the server's working directory."""
    inside = []
    for given in paths:
        if not given or "\0" in given:
            raise UsageError(f"paths: {given!r} is not a path")
        real = os.path.realpath(os.path.join(root, given))
        if not _within(real, root):
            resolved = "" if real == given else f" (it leads to {real})"
            raise OutsideRoot(
                f"{given}: outside the working root {root}{resolved}; rank_files reads only "
                "inside the directory the server was started in"
            )
        inside.append(os.path.relpath(real, root))
    return [] if inside == ["."] else inside  # the root itself: paths shown relative to it


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise UsageError(f"top_k must be a whole number ≥ 1, got {top_k!r}")


def load_server() -> Any:
    """The protocol side (``integrations.mcp_server``), or a usage error naming the extra when
    the MCP SDK cannot be imported."""
    try:
        from rerank_cli.integrations import mcp_server
    except ImportError as error:
        raise UsageError(
            f"rerank mcp needs the MCP Python SDK, an optional extra: {EXTRA} "
            f"(import failed: {error})"
        ) from None
    return mcp_server


def run(env: Environment, settings: Settings) -> ExitCode:
    """Serve the tools over stdio until the client closes stdin; one session throughout."""
    from rerank_cli import collector

    server = load_server()  # before the key is asked for: a missing extra is said first
    root = os.path.realpath(os.getcwd())
    with Reranker.from_settings(settings, env, notify=env.info) as session:
        tools = AgentTools(session, root, settings.mcp_max_docs)
        engine = settings.engine if not session.capabilities.remote else settings.host
        env.info(
            f"MCP server on stdio: tools rank and rank_files, scored by {engine}; files under "
            f"{root}; at most {plural(settings.mcp_max_docs, 'document')} per call"
        )
        # The CLI pauses the cyclic garbage collector for a command's bulk work; a server
        # lives for hours, so it collects as any program does.
        with collector.resumed():
            server.serve(tools, env)
    return ExitCode.OK
