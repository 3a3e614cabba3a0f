"""Machine formats: JSON lines, one JSON array, the plain input records, and TSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import orjson

from rerank_cli.documents import Result
from rerank_cli.writers.base import WriteOptions, record

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def write_jsonl(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    out.write(b"".join(orjson.dumps(record(r)) + b"\n" for r in results))


def write_json(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    out.write(orjson.dumps([record(r) for r in results], option=orjson.OPT_INDENT_2) + b"\n")


def write_plain(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    """Each original record exactly as read; only a missing final newline is added. A record
    that ends with NUL (``-F nul``) is complete as it is. A document with a ``separator``
    (grep context groups, paragraphs) gets it printed before it, except first."""
    parts: list[bytes] = []
    for result in results:
        raw = result.document.raw
        if parts:
            parts.append(result.document.separator)
        parts.append(raw if raw.endswith((b"\n", b"\0")) else raw + b"\n")
    out.write(b"".join(parts))


def escape_tsv(text: str) -> str:
    return text.translate(_TSV_ESCAPES)


def write_tsv(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    lines = (f"{r.score:.4f}\t{escape_tsv(r.document.text)}\n" for r in results)
    out.write("".join(lines).encode("utf-8"))
