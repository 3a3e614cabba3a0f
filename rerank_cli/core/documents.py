"""The data that flows through the pipeline: documents in, results out."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, overload


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


class DocumentStore(Sequence[Document]):
    """Documents held compactly, for inputs of millions of lines: a document that is one line
    of a file and nothing more (its text, that text plus LF as its bytes, a file and a line
    number; no record, id, fields or separator) costs its line number and its text; any other
    document is kept as it is. ``store[i]`` builds document ``i`` (numbered ``i``) when it is
    asked for: the ranking needs scores and positions, and only the documents written out are
    built. Given ``texts`` and ``positions``, document ``i``'s text is
    ``texts[positions[i]]`` (a plan's deduplicated texts: a repeated text is held once);
    otherwise the store keeps each document's text itself."""

    __slots__ = (
        "_held",
        "_hold",
        "_lines",
        "_names",
        "_others",
        "_positions",
        "_shared",
        "_starts",
        "_texts",
    )

    def __init__(
        self,
        texts: Sequence[str] | None = None,
        positions: Sequence[int] | None = None,
        *,
        hold: int | None = None,
    ) -> None:
        self._hold = hold  # held as they are at most: HOLD, or fewer if given
        self._shared = texts
        self._positions = positions
        self._texts: list[str] | None = [] if texts is None else None
        self._lines: array[int] = array("I")  # the line; OTHER: kept whole in _others
        self._others: dict[int, Document] = {}
        self._names: list[str] = []  # the file of each run of compact documents …
        self._starts: array[int] = array("q")  # … and the first document of that run
        # Up to HOLD documents are held as they are (building them again to write them out
        # would cost more than they take); past that, all are held compactly.
        self._held: list[Document] | None = []

    def append(self, document: Document) -> None:
        self.extend((document,))

    def extend(self, documents: Iterable[Document]) -> None:
        """Add ``documents``, in order (numbered from the number held so far)."""
        held = self._held
        if held is not None:
            number = len(held)
            for document in documents:
                document.index = number
                held.append(document)
                number += 1
            if number > (HOLD if self._hold is None else min(HOLD, self._hold)):
                self._held = None
                self._compact(held)
            return
        self._compact(documents)

    def _compact(self, documents: Iterable[Document]) -> None:
        lines, names, starts, others = self._lines, self._names, self._starts, self._others
        texts = self._texts
        last = names[-1] if names else None
        index = len(lines)
        for document in documents:
            source = document.source
            text = document.text
            if (
                source is not None
                and 0 < (source.line or 0) < LINE_LIMIT
                and document.record is None
                and document.id is None
                and document.fields is None
                and not document.separator
                and document.raw == (text + "\n").encode()
            ):
                if source.file != last:
                    last = source.file
                    names.append(last)
                    starts.append(index)
                lines.append(source.line)  # type: ignore[arg-type]  # checked above
            else:
                document.index = index
                others[index] = document
                lines.append(OTHER)
            if texts is not None:
                texts.append(text)
            index += 1

    @property
    def held(self) -> list[Document] | None:
        """The documents as given, while they are held so (up to HOLD of them)."""
        return self._held

    def keep_texts(self) -> None:
        """Hold each document's text from now on (the shared texts stop being whole-document
        texts: a plan that starts to split documents)."""
        if self._texts is None:
            held = self._held is not None  # then their texts are taken when they are compacted
            self._texts = [] if held else [self.text(i) for i in range(len(self))]
            self._shared = self._positions = None

    def __len__(self) -> int:
        return len(self._lines) if self._held is None else len(self._held)

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Document]: ...

    def __getitem__(self, index: int | slice) -> Document | Sequence[Document]:
        if isinstance(index, slice):
            return self.build(range(*index.indices(len(self))))
        if self._held is not None:
            return self._held[index]
        if index < 0:
            index += len(self._lines)
        if not 0 <= index < len(self._lines):
            raise IndexError("document index out of range")
        return self.build((index,))[0]

    def build(self, indices: Iterable[int]) -> list[Document]:
        """Documents ``indices``, built (or, kept whole, as they are), in that order."""
        if self._held is not None:
            return [self._held[i] for i in indices]
        lines, others, names, starts = self._lines, self._others, self._names, self._starts
        if self._texts is not None:
            texts: Sequence[str] = self._texts
            positions: Sequence[int] | None = None
        else:
            assert self._shared is not None and self._positions is not None
            texts, positions = self._shared, self._positions
        single = names[0] if len(names) == 1 else None
        built = []
        for index in indices:
            line = lines[index]
            if line == OTHER:
                built.append(others[index])
                continue
            text = texts[index if positions is None else positions[index]]
            name = single or names[bisect_right(starts, index) - 1]
            built.append(Document(text, (text + "\n").encode(), Source(name, line), index=index))
        return built

    def text(self, index: int) -> str:
        """Document ``index``'s text, without building the document."""
        if self._held is not None:
            return self._held[index].text
        if self._texts is not None:
            return self._texts[index]
        assert self._shared is not None and self._positions is not None
        return self._shared[self._positions[index]]


HOLD = 1 << 17  # documents held as they are, at most
# … when they are read as they arrive (stdin): fewer, since 131,072 documents held whole
# (~420 bytes each) would be most of the peak memory of a run of a million lines.
STREAM_HOLD = 1 << 14
OTHER = 0  # a line number no document has: the document is kept whole
LINE_LIMIT = 2**32  # line numbers are held in 4 bytes; a document past that is kept whole
