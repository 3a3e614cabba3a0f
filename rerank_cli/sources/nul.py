"""``-F nul`` (``-0``): records separated by NUL bytes (``find -print0``, ``printf '%s\\0'``), so a
document may span lines.

Blank records are skipped. ``raw`` is the record with its NUL, so ``-o plain`` prints
NUL-terminated records, ready for ``xargs -0``; a missing final NUL is added. The source line is
the line of the input where the record starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from rerank_cli.core.documents import Document, Source
from rerank_cli.sources.records import ReadOptions, ReadReport, is_blank_line, strip_bom


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    data = strip_bom(data)
    line = 1
    start = 0
    while start < len(data):
        end = data.find(b"\0", start)
        if end < 0:
            end = len(data)
        record = data[start:end]
        if not is_blank_line(record):
            yield Document(
                text=report.decode(record, name), raw=record + b"\0", source=Source(name, line)
            )
        line += record.count(b"\n")
        start = end + 1
