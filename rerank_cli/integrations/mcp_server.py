"""``rerank mcp``'s protocol side: the MCP Python SDK's ``MCPServer`` (the optional ``mcp``
extra) serving :class:`~rerank_cli.jobs.mcp_job.AgentTools` over stdio.

The SDK does the protocol — JSON-RPC framing, the handshake, argument validation against the
input schema, the output schema derived from the models below. This module declares the tools
and turns each call's outcome into a result: the structured record plus a compact text form,
or a tool error carrying the user-facing message (the server keeps running). Nothing leaves
the process unredacted: errors are the CLI's (redacted when made), an unexpected exception is
redacted here, and every log record goes through :func:`redact`.
"""

# No ``from __future__ import annotations``: the SDK reads the tools' annotations at run time.

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Annotated

import anyio.to_thread
from mcp.server import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from rerank_cli import __version__
from rerank_cli.errors import RerankError
from rerank_cli.jobs.mcp_job import AgentTools, Answer
from rerank_cli.redact import redact
from rerank_cli.terminal import Environment

INSTRUCTIONS = (
    "Rank texts by relevance to a query with a reranker model. `rank` orders documents you "
    "already have (search hits, snippets, log lines) and keeps the best top_k; `rank_files` "
    "finds the files under the server's working directory that best answer a question and "
    "gives each file's best chunk as path:lines. Prefer a narrow `glob`/`paths`: each call is "
    "limited in how many documents or chunks it may score."
)


class RankedDocument(BaseModel):
    rank: int = Field(description="1 is the most relevant.")
    index: int = Field(description="The document's position in `documents`, from 0.")
    score: float = Field(description="Relevance score; higher is more relevant.")
    text: str = Field(description="The document.")


class RankOutput(BaseModel):
    documents: int = Field(description="Documents ranked (blank ones are not).")
    results: list[RankedDocument] = Field(description="The best `top_k`, best first.")


class RankedFile(BaseModel):
    rank: int = Field(description="1 is the most relevant.")
    score: float = Field(description="The score of the file's best chunk.")
    path: str = Field(description="Relative to the server's working directory.")
    start_line: int | None = Field(description="First line of the best chunk (from 1).")
    end_line: int | None = Field(description="Last line of the best chunk (inclusive).")
    text: str = Field(description="The best chunk's text.")
    chunks: int = Field(description="Chunks of the file that were scored.")


class RankFilesOutput(BaseModel):
    files: int = Field(description="Files ranked.")
    chunks: int = Field(description="Chunks scored.")
    skipped: str = Field(description="What the walk left out, and why.")
    results: list[RankedFile] = Field(description="The best `top_k` files, best first.")


def build(tools: AgentTools, env: Environment) -> MCPServer:
    """The server, with its two tools bound to ``tools``."""
    server: MCPServer = MCPServer(
        "rerank", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    hints = ToolAnnotations(read_only_hint=True, open_world_hint=tools.session.capabilities.remote)

    @server.tool(
        name="rank",
        description="Rank `documents` by relevance to `query`; returns the best `top_k` with "
        "their scores and their indices in `documents`.",
        annotations=hints,
    )
    async def rank(
        query: Annotated[str, Field(description="What the documents are ranked against.")],
        documents: Annotated[list[str], Field(description="The texts to rank.")],
        top_k: Annotated[int, Field(ge=1, description="How many results to return.")] = 10,
        instruction: Annotated[
            str | None,
            Field(description="A task instruction for the model (e.g. 'Find the code that …')."),
        ] = None,
    ) -> Annotated[CallToolResult, RankOutput]:
        call = functools.partial(tools.rank, query, documents, top_k, instruction)
        return await answer(env, "rank", call)

    @server.tool(
        name="rank_files",
        description="Rank the text files under `paths` (inside the server's working "
        "directory) by their best chunk of 60 lines for `query`; ignored, hidden, binary and "
        "secret files are skipped. Returns path, line range and text of each best chunk.",
        annotations=hints,
    )
    async def rank_files(
        query: Annotated[str, Field(description="What the files are ranked against.")],
        paths: Annotated[
            list[str],
            Field(description="Files or directories, relative to the working directory."),
        ] = ["."],  # noqa: B006  (the schema's default; never mutated)
        glob: Annotated[
            str | list[str] | None,
            Field(
                description="Only paths matching this gitignore-style pattern (e.g. '*.py'); "
                "'!pattern' excludes; a list for several."
            ),
        ] = None,
        top_k: Annotated[int, Field(ge=1, description="How many files to return.")] = 10,
    ) -> Annotated[CallToolResult, RankFilesOutput]:
        call = functools.partial(tools.rank_files, query, list(paths), glob, top_k)
        return await answer(env, "rank_files", call)

    return server


async def answer(env: Environment, name: str, call: Callable[[], Answer]) -> CallToolResult:
    """Run a tool's work on a worker thread (the session waits on its own loop) and make its
    result: structured and compact text, or a tool error with the message a user would read."""
    try:
        done = await anyio.to_thread.run_sync(call)
    except RerankError as error:
        env.warn(f"{name}: {error.message}")
        return failure(error.message)
    except Exception as error:  # a bug: said in one line, redacted; the server goes on
        if env.env.get("RERANK_DEBUG"):
            env.stderr.write(redact(traceback.format_exc()))
        detail = redact(f"{type(error).__name__}: {error}")
        env.warn(f"{name}: internal error: {detail}")
        return failure(f"internal error: {detail} (please report it; RERANK_DEBUG=1 shows where)")
    return CallToolResult(
        content=[TextContent(type="text", text=done.text)], structured_content=done.structured
    )


def failure(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=redact(message))], is_error=True)


class Redacting(logging.Filter):
    """Every log record's text redacted; a traceback is folded into the text (redacted too),
    since a handler would otherwise render it from the live exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redact(text), None
        return True


def serve(tools: AgentTools, env: Environment) -> None:
    """Serve over stdio until the client closes the connection."""
    server = build(tools, env)
    for handler in logging.getLogger().handlers:  # the SDK has configured them by now
        handler.addFilter(Redacting())
    server.run("stdio")
