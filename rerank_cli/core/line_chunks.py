"""Splitting a long text into the windows that are scored one by one.

A chunker maps a text to :class:`~rerank_cli.documents.Chunk` objects: character offsets into
the text plus the 1-based, inclusive line range they cover, so a best chunk can be shown as
``path:12-71``. :class:`LineChunker` cuts fixed windows of lines, and :func:`splitter` turns
any chunker into the pipeline's :data:`~rerank_cli.pipeline.Splitter`. A window still over the
model's token limit is cut again by tokens in :mod:`rerank_cli.longdocs`, which wraps splitters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rerank_cli.core.documents import Chunk, Document
from rerank_cli.core.pipeline import Splitter
from rerank_cli.errors import UsageError

DEFAULT_LINES = 60
DEFAULT_OVERLAP = 10
# A guard for minified or generated files whose 60 lines can weigh megabytes: no request should
# carry one huge document (APIs truncate or refuse it). About 2,000 tokens of English or code.
MAX_CHUNK_CHARS = 8000


class Chunker(Protocol):
    def chunks(self, text: str) -> list[Chunk]:
        """The windows of ``text`` in order; together they cover every character."""
        ...


def line_starts(text: str) -> list[int]:
    """The offset where each line starts; only LF ends a line, and a final LF opens none."""
    starts = [0] if text else []
    position = text.find("\n")
    while position != -1 and position + 1 < len(text):
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


@dataclass(frozen=True)
class LineChunker:
    """Windows of ``lines`` lines, each starting ``lines - overlap`` lines after the previous
    one, until a window reaches the end; a text of at most ``lines`` lines is one chunk.

    ``max_chars`` bounds a window's size: a window stops early at the line that would take it
    over (its overlap shrinks in proportion), and a single line longer than that is cut into
    consecutive pieces of ``max_chars`` characters.
    """

    lines: int = DEFAULT_LINES
    overlap: int = DEFAULT_OVERLAP
    max_chars: int | None = MAX_CHUNK_CHARS

    def __post_init__(self) -> None:
        if self.lines < 1:
            raise UsageError(f"--chunk-lines must be at least 1, got {self.lines}")
        if not 0 <= self.overlap < self.lines:
            raise UsageError(
                f"--overlap must be at least 0 and less than --chunk-lines ({self.lines}), "
                f"got {self.overlap}"
            )
        if self.max_chars is not None and self.max_chars < 1:
            raise UsageError(f"chunk size limit must be at least 1, got {self.max_chars}")

    def chunks(self, text: str) -> list[Chunk]:
        starts = line_starts(text)
        total = len(starts)
        budget = self.max_chars if self.max_chars is not None else len(text)

        def end_of(line: int) -> int:  # the offset just past 0-based ``line``
            return starts[line + 1] if line + 1 < total else len(text)

        out: list[Chunk] = []
        first = 0
        covered = 0  # lines before this one are in some chunk already
        while covered < total:
            limit = min(first + self.lines, total)
            last = first + 1  # exclusive
            while last < limit and end_of(last) - starts[first] <= budget:
                last += 1
            if last <= covered:  # cut short inside the previous window: nothing new
                first += 1
                continue
            covered = last
            start_char, end_char = starts[first], end_of(last - 1)
            if end_char - start_char > budget:  # one line, longer than the budget
                for piece in range(start_char, end_char, budget):
                    out.append(Chunk(len(out), piece, min(piece + budget, end_char), last, last))
            else:
                out.append(Chunk(len(out), start_char, end_char, first + 1, last))
            overlap = self.overlap * (last - first) // self.lines
            first = max(first + 1, last - overlap)
        return out


def split(chunker: Chunker, text: str) -> list[tuple[Chunk, str]]:
    """``(chunk, its text)`` for every chunk with something in it: blank windows score nothing."""
    pieces = ((chunk, text[chunk.start_char : chunk.end_char]) for chunk in chunker.chunks(text))
    return [(chunk, piece) for chunk, piece in pieces if piece.strip()]


def splitter(chunker: Chunker) -> Splitter:
    """The pipeline's view of a chunker: a document's scored units are its chunks."""

    def units(document: Document) -> Sequence[tuple[Chunk | None, str]]:
        return split(chunker, document.text)

    return units
