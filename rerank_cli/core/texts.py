"""Distinct texts held compactly, for inputs of millions of lines: a run of texts is held as
one string (their concatenation) and an array of where each ends, and a text is sliced out
when it is asked for (a batch is sent, a result written). A Python string per text costs
about 50 bytes more than its characters; a million short lines, 50 MB.

:class:`TextIndex` finds a text's position among them without a set or dict of the texts: an
open-addressing table of positions in an array, with each text's hash in another; texts are
compared (sliced out) only when their hashes are equal."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, islice
from typing import overload

RUN = 4096  # texts joined into one string: one wide character widens only its run


class TextTable(Sequence[str]):
    """Texts in order, appended (:meth:`append`, :meth:`extend`). Until :meth:`compact` is
    called they are a plain list (:attr:`listed`); from then on, each run of ``RUN`` texts is
    joined into one string, and only the texts of the run not yet full are held as strings.

    One thread may append while others read the texts already there (the event loop sends
    the texts planned so far): the texts not yet joined and how many are joined are one
    tuple, replaced (never changed in place but by appending) once a run is joined."""

    __slots__ = ("_ends", "_firsts", "_runs", "_starts", "_tail")

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._tail: tuple[list[str], int] = (list(texts), 0)  # texts not joined; joined
        self._runs: list[str] | None = None  # None: not compact (every text in the tail)
        self._firsts: array[int] = array("q")  # the position of each run's first text …
        self._starts: array[int] = array("q")  # … and the offset of its first character …
        self._ends: array[int] = array("q")  # … and of each joined text's end

    @property
    def listed(self) -> list[str] | None:
        """Every text, as a list, while the table is not compact."""
        return self._tail[0] if self._runs is None else None

    def compact(self) -> None:
        """Join the texts held so far, and every later run of ``RUN``."""
        if self._runs is None:
            self._runs = []
            self._join_up_to(len(self._tail[0]))

    def append(self, text: str) -> None:
        tail = self._tail[0]
        tail.append(text)
        if self._runs is not None and len(tail) >= RUN:
            self._join_up_to(len(tail))

    def extend(self, texts: Iterable[str]) -> None:
        tail = self._tail[0]
        tail.extend(texts)
        if self._runs is not None and len(tail) >= RUN:
            self._join_up_to(len(tail) - len(tail) % RUN)

    def _join_up_to(self, count: int) -> None:
        """Join the first ``count`` texts of the tail, a run of ``RUN`` at a time."""
        runs = self._runs
        assert runs is not None
        tail, joined = self._tail
        ends = self._ends
        for start in range(0, count, RUN):
            texts = tail[start : start + RUN]
            offset = ends[-1] if ends else 0
            runs.append("".join(texts))
            self._firsts.append(joined + start)
            self._starts.append(offset)
            ends.extend(islice(accumulate(map(len, texts), initial=offset), 1, None))
        self._tail = (tail[count:], joined + count)  # what readers see from now on

    def __len__(self) -> int:
        tail, joined = self._tail
        return joined + len(tail)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._text(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("text index out of range")
        return self._text(index)

    def _text(self, index: int) -> str:
        tail, joined = self._tail
        if index >= joined:
            return tail[index - joined]
        assert self._runs is not None
        ends = self._ends
        start = ends[index - 1] if index else 0
        run = bisect_right(self._firsts, index) - 1
        base = self._starts[run]
        return self._runs[run][start - base : ends[index] - base]

    def __iter__(self) -> Iterator[str]:
        tail, joined = self._tail
        if joined:
            assert self._runs is not None
            runs, firsts, starts, ends = self._runs, self._firsts, self._starts, self._ends
            run = 0
            while run < len(firsts) and firsts[run] < joined:
                last = min(firsts[run + 1], joined) if run + 1 < len(firsts) else joined
                text, base = runs[run], starts[run]
                start = base
                for end in ends[firsts[run] : last]:
                    yield text[start - base : end - base]
                    start = end
                run += 1
        yield from tail


class TextIndex:
    """The position of each distinct text of a :class:`TextTable`: :meth:`place` gives a
    text's position, appending it to the table if it is new. The same positions as a dict of
    the texts (a property test checks it), in 12 to 16 bytes a text rather than a dict's (or a
    set's) 32 to 64 and the string each keeps alive."""

    __slots__ = ("_hashes", "_mask", "_slots", "texts")

    def __init__(self, texts: TextTable) -> None:
        self.texts = texts
        self._hashes: array[int] = array("q", map(hash, texts))
        self._slots: array[int] = array("i")
        self._mask = 0
        self._grow(len(texts))

    def _grow(self, count: int) -> None:
        """Room for ``count`` texts at most half full: a table of twice that, rebuilt."""
        size = 8
        while size < 2 * count:
            size *= 2
        if size <= len(self._slots):
            return
        mask = size - 1
        slots = array("i", bytes(4 * size))
        for position, value in enumerate(self._hashes, 1):
            slot = value & mask
            while slots[slot]:
                slot = (slot + 1) & mask
            slots[slot] = position
        self._slots, self._mask = slots, mask

    def place(self, texts: Sequence[str]) -> list[int]:
        """The position of each of ``texts``; those not seen before are appended to the
        table, in order."""
        table = self.texts
        count = len(table)
        self._grow(count + len(texts))
        slots, hashes, mask = self._slots, self._hashes, self._mask
        held = count  # texts before this call are read from the table, later ones from new
        new: list[str] = []
        placed: list[int] = []
        for text in texts:
            value = hash(text)
            slot = value & mask
            while True:
                found = slots[slot]
                if not found:
                    slots[slot] = count + 1
                    hashes.append(value)
                    new.append(text)
                    placed.append(count)
                    count += 1
                    break
                found -= 1
                if hashes[found] == value and (
                    (new[found - held] if found >= held else table[found]) == text
                ):
                    placed.append(found)
                    break
                slot = (slot + 1) & mask
        table.extend(new)
        return placed
