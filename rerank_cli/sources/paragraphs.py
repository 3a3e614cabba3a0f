"""``-F paragraphs``: blocks of lines separated by one or more blank (or whitespace-only) lines.

The scored text is the block's lines joined by newlines; the source line is the block's first
line. ``-o plain`` prints each block as read, one blank line between blocks.
"""

from __future__ import annotations

from collections.abc import Iterator

from rerank_cli.core.documents import Document, Source
from rerank_cli.sources.records import (
    ReadOptions,
    ReadReport,
    chomp,
    is_blank_line,
    split_lines,
    strip_bom,
)


def _paragraph(block: list[tuple[int, bytes]], name: str, report: ReadReport) -> Document:
    raw = b"".join(line for _, line in block)
    text = "\n".join(report.decode(chomp(line), name) for _, line in block)
    # The blank line printed before it in plain output, in the block's own line ending.
    blank = b"\r\n" if block[-1][1].endswith(b"\r\n") else b"\n"
    return Document(text=text, raw=raw, source=Source(name, block[0][0]), separator=blank)


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    block: list[tuple[int, bytes]] = []
    for number, raw in split_lines(strip_bom(data)):
        if not is_blank_line(chomp(raw)):
            block.append((number, raw))
        elif block:
            yield _paragraph(block, name, report)
            block = []
    if block:
        yield _paragraph(block, name, report)
