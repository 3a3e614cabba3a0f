"""Options every writer reads, and the JSON record of one result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any

from rerank_cli.core.documents import Result

# A table's score column for a document a failed run did not score (--partial).
UNSCORED = "unscored"


@dataclass(frozen=True)
class WriteOptions:
    width: int = 100
    color: bool = False
    null: bool = False  # NUL-terminated plain output (-0)


def record(result: Result) -> dict[str, Any]:
    """Keys in a fixed order: rank, score, index, text, reader fields, id, source, document,
    chunk; a document a failed run did not score (--partial) has ``null`` rank and score, and
    ``"unscored": true`` last."""
    doc = result.document
    scored = result.scored
    out: dict[str, Any] = {
        "rank": result.rank if scored else None,
        "score": result.score if scored else None,
        "index": doc.index,
        "text": doc.text,
    }
    if doc.fields:
        out.update(doc.fields)
    if doc.id is not None:
        out["id"] = doc.id
    if doc.source is not None:
        out["source"] = {"file": doc.source.file, "line": doc.source.line}
    if doc.record is not None:
        out["document"] = doc.record
    if result.chunk is not None:
        chunk = result.chunk
        out["chunk"] = {
            "index": chunk.index,
            "start_char": chunk.start_char,
            "end_char": chunk.end_char,
        }
    if not scored:
        out["unscored"] = True
    return out


def render(renderable: Any, out: IO[bytes], options: WriteOptions) -> None:
    """Print a rich renderable to ``out`` at the options' width, coloured only if asked."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(
        file=buffer,
        width=options.width,
        force_terminal=options.color,
        color_system="standard" if options.color else None,
        no_color=not options.color,
        highlight=False,
        emoji=False,
    ).print(renderable)
    out.write(without_trailing_spaces(buffer.getvalue()).encode("utf-8"))


_SGR = r"\x1b\[[0-9;]*m"
_TRAILING = re.compile(rf"(?:{_SGR}| )+$", re.MULTILINE)


def without_trailing_spaces(text: str) -> str:
    """Rich pads every line of a table to its width: drop the spaces at the end of each line
    (in a pipe they are noise for ``diff``, ``grep`` and editors). Colour codes among them are
    kept, so a terminal shows exactly what it showed (the table sets no background)."""
    return _TRAILING.sub(lambda found: "".join(re.findall(_SGR, found.group())), text)
