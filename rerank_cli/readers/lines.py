"""``-F lines``: one document per line; blank lines skipped, line numbers kept."""

from __future__ import annotations

from collections.abc import Iterator

from rerank_cli.documents import Document, Source
from rerank_cli.readers.base import ReadOptions, ReadReport, chomp, split_lines, strip_bom


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw)
        if not body.strip():
            continue
        yield Document(text=report.decode(body, name), raw=raw, source=Source(name, number))
