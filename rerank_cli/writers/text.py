"""Machine formats: JSON lines, one JSON array, the plain input records, and TSV."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, TypeVar

import orjson

from rerank_cli.core.documents import Result
from rerank_cli.writers.common import WriteOptions, record

T = TypeVar("T")
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


PIECE = 8192  # results written at a time when they are built as the writer goes


def write_jsonl(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    if isinstance(results, list):  # built already: in input order, for memory locality
        out.write(b"".join(in_rank_order(results, _json_line)))
        return
    # Built one at a time (a million-document ranking): written a piece at a time, so that
    # the output is never all in memory at once.
    for start in range(0, len(results), PIECE):
        out.write(b"".join(in_rank_order(results[start : start + PIECE], _json_line)))


def write_json(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    records = in_rank_order(results, record)
    out.write(orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")


def _json_line(result: Result) -> bytes:
    # The copy that adds the newline is also what keeps memory small: orjson's own bytes
    # object holds a buffer of a few KB, and 100,000 of those kept at once are 370 MB.
    return orjson.dumps(record(result)) + b"\n"


def in_rank_order(results: Sequence[Result], make: Callable[[Result], T]) -> list[T]:
    """``make`` of each result, in rank order; built in input order when the results say it
    (a :class:`Ranking`), for memory locality."""
    by_input = getattr(results, "by_input", ())
    if len(by_input) != len(results) or not results:
        return [make(r) for r in results]
    first = results[0].rank  # a piece of a ranking starts past rank 1
    made: list[T] = [None] * len(results)  # type: ignore[list-item]  # every slot is filled
    for result in by_input:
        made[result.rank - first] = make(result)
    return made


def write_plain(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    """Each original record exactly as read; only a missing final newline is added. A record
    that ends with NUL (``-F nul``) is complete as it is. A document with a ``separator``
    (grep context groups, paragraphs) gets it printed before it, except first."""
    parts: list[bytes] = []
    first = True
    for result in results:
        raw = result.document.raw
        if not first:
            parts.append(result.document.separator)
        first = False
        parts.append(raw if raw.endswith((b"\n", b"\0")) else raw + b"\n")
        if len(parts) >= PIECE:  # a million records are not held at once
            out.write(b"".join(parts))
            parts = []
    out.write(b"".join(parts))


def score_text(result: Result) -> str:
    return f"{result.score:.4f}" if result.scored else ""


def escape_tsv(text: str) -> str:
    return text.translate(_TSV_ESCAPES)


def write_tsv(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    """``score<TAB>text``; a document not scored (--partial) has an empty score field."""
    for start in range(0, len(results), PIECE):
        piece = results[start : start + PIECE]
        lines = (f"{score_text(r)}\t{escape_tsv(r.document.text)}\n" for r in piece)
        out.write("".join(lines).encode("utf-8"))
