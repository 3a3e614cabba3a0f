"""Readers turn the bytes of one input into documents; :func:`read` picks one by format."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from rerank_cli.documents import Document
from rerank_cli.errors import UsageError
from rerank_cli.readers import jsonish, lines
from rerank_cli.readers.base import Reader, ReadOptions, ReadReport, chomp, split_lines, strip_bom

__all__ = ["FORMATS", "ReadOptions", "ReadReport", "detect", "read"]

FORMATS: dict[str, Reader] = {
    "lines": lines.read,
    "jsonl": jsonish.read_jsonl,
    "json": jsonish.read_json,
}


def detect(data: bytes) -> str:
    """``json`` if the input starts with ``[``, ``jsonl`` if its first non-blank line is a JSON
    object, else ``lines``."""
    head = strip_bom(data).lstrip()
    if head.startswith(b"["):
        return "json"
    for _, raw in split_lines(head):
        line = chomp(raw).strip()
        if not line:
            continue
        if line.startswith(b"{"):
            try:
                return "jsonl" if isinstance(orjson.loads(line), dict) else "lines"
            except orjson.JSONDecodeError:
                return "lines"
        return "lines"
    return "lines"


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    fmt = detect(data) if options.format == "auto" else options.format
    try:
        reader = FORMATS[fmt]
    except KeyError:
        raise UsageError(f"unknown input format {fmt!r}") from None
    return reader(data, name, options, report)
