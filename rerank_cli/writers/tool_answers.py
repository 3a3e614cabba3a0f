"""What ``rerank mcp``'s tools answer: a structured record (the tool's output schema) and a
compact text form of the same ranking for the agent's context, where every line costs tokens.

Pure: results in, plain data and text out; nothing here knows the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerank_cli.core.documents import Result
from rerank_cli.words import plural
from rerank_cli.writers.file_ranking import (
    best_text,
    line_range,
    path_of,
    path_text,
    telling_line,
)

# A line of the text form shows at most this many characters of a document or chunk line.
PREVIEW_CHARS = 100


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    """``text`` on one line (whitespace runs folded), cut to ``width`` characters with ``…``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def input_index(result: Result) -> int:
    """The document's position in the caller's list (blank documents are counted there, but
    never scored): kept as the document's id."""
    given = result.document.id
    return given if isinstance(given, int) else result.document.index


def ranked_documents(results: Sequence[Result], documents: int) -> dict[str, Any]:
    """``rank``'s structured answer: ``documents`` ranked, ``results`` best first."""
    return {
        "documents": documents,
        "results": [
            {
                "rank": r.rank,
                "index": input_index(r),
                "score": r.score,
                "text": r.document.text,
            }
            for r in results
        ],
    }


def documents_text(results: Sequence[Result], documents: int) -> str:
    """``rank``'s text form: a header, then ``rank. [index] score text`` per result."""
    if not results:
        return f"no results ({plural(documents, 'document')} ranked)"
    head = f"best {len(results)} of {plural(documents, 'document')} (rank. [index] score text):"
    lines = [
        f"{r.rank}. [{input_index(r)}] {r.score:.4f} {preview(r.document.text)}" for r in results
    ]
    return "\n".join([head, *lines])


def ranked_files(
    results: Sequence[Result], files: int, chunks: int, skipped: str
) -> dict[str, Any]:
    """``rank_files``' structured answer: each file with its best chunk's lines and text."""
    records = []
    for r in results:
        start, end = line_range(r)
        records.append(
            {
                "rank": r.rank,
                "score": r.score,
                "path": path_text(path_of(r)),
                "start_line": start,
                "end_line": end,
                "text": best_text(r),
                "chunks": r.chunks_scored,
            }
        )
    return {"files": files, "chunks": chunks, "skipped": skipped, "results": records}


def files_text(results: Sequence[Result], files: int, chunks: int, query: str) -> str:
    """``rank_files``' text form: ``rank. score path:lines  the chunk's most telling line``."""
    if not results:
        return f"no results ({plural(files, 'file')} ranked)"
    head = (
        f"best {len(results)} of {plural(files, 'file')} ({plural(chunks, 'chunk')}) "
        "(rank. score path:lines best line):"
    )
    lines = []
    for r in results:
        start, end = line_range(r)
        where = path_text(path_of(r))
        if start is not None:
            where += f":{start}" if start == end else f":{start}-{end}"
        line = preview(telling_line(best_text(r), query))
        lines.append(f"{r.rank}. {r.score:.4f} {where}  {line}".rstrip())
    return "\n".join([head, *lines])
