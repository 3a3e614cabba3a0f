"""The data that flows through the pipeline: documents in, results out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Source:
    """Where a document was read: a file name (``-`` for stdin) and a 1-based line, when the
    record has a line of its own (not so for the elements of one JSON array)."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(slots=True)
class Document:
    """One thing to rank.

    ``text`` is what the engine scores; ``raw`` is the record exactly as read (bytes, with its
    line terminator) so that plain output reproduces the input byte for byte; ``record`` is the
    parsed JSON value for JSON input; ``fields`` holds reader-specific extras for JSON output.
    """

    text: str
    raw: bytes
    source: Source | None = None
    record: Any = None
    id: Any = None
    fields: dict[str, Any] | None = None  # not an empty dict each: 100,000 documents, 100,000 dicts
    index: int = -1  # 0-based position in the whole input, set when inputs are joined
    # Printed before this record in plain output unless it comes first: grep's ``--`` between
    # context groups, a blank line between paragraphs.
    separator: bytes = b""


@dataclass(slots=True)
class Chunk:
    """The part of a document whose score became the document's score."""

    index: int
    start_char: int
    end_char: int
    start_line: int | None = None
    end_line: int | None = None


@dataclass(slots=True)
class Result:
    rank: int
    score: float
    document: Document
    chunk: Chunk | None = None
    chunks_scored: int = 1
    # False only in the output of a failed run with --partial: a document the run did not get
    # to score (its rank and score mean nothing; writers print them as unscored).
    scored: bool = True
