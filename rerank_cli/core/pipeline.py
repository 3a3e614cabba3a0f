"""From documents to a ranking: split into scored units → dedup → engine → fold units back into
documents (best unit wins) → global order by score, ties by input order → filters.

Engines are pointwise, so the ranking does not depend on how the engine batches."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from heapq import merge, nlargest
from itertools import repeat
from operator import attrgetter
from typing import overload

from rerank_cli.core.documents import Chunk, Document, DocumentStore, Result
from rerank_cli.core.texts import TextIndex, TextTable
from rerank_cli.engines.interface import Engine, ScoreCallback, Stats

# A splitter turns one document into the units that are scored: (chunk, text) pairs. The
# default scores the document whole.
Splitter = Callable[[Document], Sequence[tuple[Chunk | None, str]]]


def whole(document: Document) -> Sequence[tuple[Chunk | None, str]]:
    return ((None, document.text),)


@dataclass
class Filters:
    top_k: int | None = None
    min_score: float | None = None


class Plan:
    """What will be scored: the distinct texts, and which document (and chunk) each unit is.
    A plan of whole documents (one unit each, the whole text, in order) holds each document's
    text position in an array: ``positions[d]`` is document ``d``'s text."""

    __slots__ = ("_units", "documents", "positions", "texts", "whole")

    def __init__(
        self,
        documents: Sequence[Document],
        texts: Sequence[str] | None = None,
        units: list[tuple[int, Chunk | None, int]] | None = None,
        *,
        positions: array[int] | None = None,
    ) -> None:
        self.documents = documents
        self.texts: Sequence[str] = [] if texts is None else texts
        self.whole = positions is not None  # one unit per document, each the whole text
        self.positions: array[int] = array("q") if positions is None else positions
        self._units: list[tuple[int, Chunk | None, int]] = [] if units is None else units

    @property
    def units(self) -> list[tuple[int, Chunk | None, int]]:
        """(document, chunk, text position) of every unit, in order."""
        if self.whole:
            no_chunk: Chunk | None = None
            return list(
                zip(range(len(self.positions)), repeat(no_chunk), self.positions, strict=False)
            )
        return self._units

    @property
    def unit_count(self) -> int:
        return len(self.positions) if self.whole else len(self._units)


class Planner:
    """A plan built as documents arrive (:meth:`add`, a block at a time): each new distinct
    text is appended to ``plan.texts`` as it is first seen, so that scoring can start on the
    texts already planned while the input is still being read. Identical texts are planned
    once per run, whatever block they come in. Documents are held in a
    :class:`~rerank_cli.core.documents.DocumentStore`, texts in a
    :class:`~rerank_cli.core.texts.TextTable`.

    While the store holds documents as they are (up to ``HOLD``), whole documents are
    deduplicated through a dict, in one comprehension a block: the common case, as fast as
    planning all at once. Past that, the texts are held compactly and deduplicated through a
    :class:`~rerank_cli.core.texts.TextIndex` (no string, set entry or position object per
    text): a million short lines cost about their bytes."""

    def __init__(self, whole_documents: bool = True, *, hold: int | None = None) -> None:
        """``hold``: documents held as they are at most, if fewer than ``HOLD``."""
        texts = TextTable()
        positions = array("I") if whole_documents else None
        store = (
            DocumentStore(texts, positions, hold=hold)
            if positions is not None
            else DocumentStore(hold=hold)
        )
        self.plan = Plan(store, texts, positions=positions)
        self._texts = texts
        self._store = store
        self._index: TextIndex | None = None  # whole documents, once held compactly
        self._position_of: dict[str, int] = {}  # held whole documents, or split ones

    def add(self, documents: Sequence[Document], split: Splitter = whole) -> None:
        """Plan ``documents`` (numbered from the number of documents planned so far), each split
        by ``split``. The plan stays one of whole documents for as long as every document is
        one unit, its whole text; the first split otherwise turns it into a plan of units."""
        work = self.plan
        texts = self._texts
        store = self._store
        parts: list[Sequence[tuple[Chunk | None, str]]] | None = None
        if work.whole and split is not whole:
            for number, document in enumerate(documents, len(store)):
                document.index = number  # what a refusal names when there is no source
            parts = [split(document) for document in documents]
            if not all(
                len(units) == 1 and units[0][0] is None and units[0][1] == document.text
                for units, document in zip(parts, documents, strict=True)
            ):
                if self._index is not None:
                    self._position_of = {text: position for position, text in enumerate(texts)}
                    self._index = None
                store.keep_texts()
                work._units = work.units
                work.positions = array("I")
                work.whole = False
        if work.whole and self._index is not None:
            work.positions.extend(self._index.place([document.text for document in documents]))
            store.extend(documents)
            return
        if work.whole:
            position_of = self._position_of
            before = len(position_of)
            place_text = position_of.setdefault  # its default: the number of texts seen before
            placed = [place_text(document.text, len(position_of)) for document in documents]
            work.positions.extend(placed)
            if len(position_of) > before:
                new = [d.text for d, p in zip(documents, placed, strict=True) if p >= before]
                texts.extend(new if len(new) == len(position_of) - before else dict.fromkeys(new))
            store.extend(documents)
            if store.held is None:  # held compactly from now on: the texts too
                texts.compact()
                self._index = TextIndex(texts)
                self._position_of = {}
            return
        position_of = self._position_of
        units = work._units
        for offset, document in enumerate(documents):
            number = len(store)
            document.index = number
            store.append(document)
            for chunk, text in parts[offset] if parts is not None else split(document):
                position = position_of.setdefault(text, len(texts))
                if position == len(texts):
                    texts.append(text)
                units.append((number, chunk, position))

    def finish(self) -> Plan:
        """The plan, once every document is in (the tables of texts seen are let go). Texts
        never held compactly are handed over as a plain list."""
        self._index = None
        self._position_of = {}
        listed = self._texts.listed
        if listed is not None:
            self.plan.texts = listed
        return self.plan


def plan(documents: Sequence[Document], split: Splitter = whole) -> Plan:
    """Split every document and dedup the texts: identical texts are scored once per run."""
    if split is whole:
        return _plan_whole(documents)
    texts: list[str] = []
    result = Plan(documents, texts)
    position_of: dict[str, int] = {}
    units = result._units
    for number, document in enumerate(documents):
        for chunk, text in split(document):
            position = position_of.setdefault(text, len(texts))
            if position == len(texts):
                texts.append(text)
            units.append((number, chunk, position))
    return result


def _plan_whole(documents: Sequence[Document]) -> Plan:
    """One unit per document, built in C-speed comprehensions: the common case, and at 100,000
    documents a tenth of a second saved."""
    position_of: dict[str, int] = {}
    # setdefault's default is evaluated first: the number of texts seen before this one.
    positions = array("q", [position_of.setdefault(d.text, len(position_of)) for d in documents])
    return Plan(documents, list(position_of), positions=positions)


class WholeResults(Sequence[Result]):
    """The results of a whole-document plan, unranked, in input order: the plan and one score
    per distinct text; ``results[d]`` builds document ``d``'s result when it is asked for."""

    __slots__ = ("scores", "work")

    def __init__(self, work: Plan, scores: Sequence[float]) -> None:
        self.work = work
        self.scores = scores

    def __len__(self) -> int:
        return len(self.work.positions)

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Result(0, self.scores[self.work.positions[index]], self.work.documents[index])

    def document_scores(self) -> array[float]:
        """Each document's score, in input order."""
        # From an iterator, the array grows as it goes: no list of a million floats first.
        return array("d", map(self.scores.__getitem__, self.work.positions))


def fold(work: Plan, scores: Sequence[float]) -> Sequence[Result]:
    """One result per document that had units, in input order; its best unit's score wins.
    Those of a whole-document plan are built when asked for (:class:`WholeResults`)."""
    if work.whole:
        documents = work.documents
        if isinstance(documents, DocumentStore):
            documents = documents.held or ()
        if documents or not work.positions:  # a few: built now, in input order
            return [
                Result(0, scores[position], document)
                for document, position in zip(documents, work.positions, strict=True)
            ]
        if len(scores) != len(work.texts):
            raise ValueError("one score per text")
        return WholeResults(work, scores)
    best: list[Result | None] = [None] * len(work.documents)
    for number, chunk, position in work.units:
        score = scores[position]
        current = best[number]
        if current is None:
            best[number] = Result(0, score, work.documents[number], chunk)
        else:
            current.chunks_scored += 1
            if score > current.score:
                current.score, current.chunk = score, chunk
    return [result for result in best if result is not None]


async def score_plan(
    query: str,
    work: Plan,
    engine: Engine,
    stats: Stats,
    on_progress: Callable[[int, int], None] | None = None,
    landed: dict[int, float] | None = None,
) -> Sequence[Result]:
    """Score the plan's texts and fold them into one result per document. ``landed``, if
    given, receives each text's score (by its position in ``work.texts``) as its batch lands:
    what a run that fails part-way has scored (see :func:`partial`)."""
    started = time.perf_counter()
    stats.texts += work.unit_count
    stats.unique += len(work.texts)
    total = len(work.texts)
    on_scores: ScoreCallback | None = None
    if on_progress is not None or landed is not None:
        done = 0

        def on_scores(positions: Sequence[int], values: Sequence[float]) -> None:
            nonlocal done
            if landed is not None:
                landed.update(zip(positions, values, strict=True))
            if on_progress is not None:
                done += len(positions)
                on_progress(done, total)

    try:
        scores = await engine.score(query, work.texts, on_scores) if work.texts else []
    finally:  # a failed run's --stats says how long it tried
        stats.elapsed += time.perf_counter() - started
    return fold(work, scores)


async def score_documents(
    query: str,
    documents: Sequence[Document],
    engine: Engine,
    stats: Stats,
    split: Splitter = whole,
    on_progress: Callable[[int, int], None] | None = None,
) -> Sequence[Result]:
    """Score every document; results come back unranked, in input order."""
    return await score_plan(query, plan(documents, split), engine, stats, on_progress)


class Ranking(list[Result]):
    """Results in rank order (rank 1 first), and ``by_input``: the same results in input
    order. Writers that build one record per result go through ``by_input`` and place each
    record by its rank: the documents are visited in the order they sit in memory, which at
    100,000 results is a quarter faster than visiting them in score order."""

    by_input: Sequence[Result] = ()


def rank(results: Sequence[Result], filters: Filters | None = None) -> Sequence[Result]:
    """Order by score (ties by input order), number from 1, then apply the filters. The
    results of a whole-document plan are ranked by position (:class:`RankedDocuments`), any
    others as a :class:`Ranking`."""
    if isinstance(results, WholeResults):
        return RankedDocuments(results, filters)
    return rank_results(results, filters)


def rank_results(results: Sequence[Result], filters: Filters | None = None) -> Ranking:
    """:func:`rank` over results already built."""
    # Two stable sorts with C key functions rather than one over (-score, index) tuples: the
    # second keeps the input order of equal scores. The first is linear on results already
    # in input order, as fold() returns them.
    by_input = sorted(results, key=_input_order)
    ordered = Ranking(by_input)
    ordered.sort(key=_score, reverse=True)
    for rank_number, result in enumerate(ordered, 1):
        result.rank = rank_number
    kept = len(ordered)
    if filters is not None:
        # Both filters keep a head of the ranking: ranks 1..kept.
        if filters.min_score is not None:
            kept = sum(1 for r in ordered if r.score >= filters.min_score)
        if filters.top_k is not None:
            kept = min(kept, filters.top_k)
        if kept < len(ordered):
            del ordered[kept:]
            by_input = [r for r in by_input if r.rank <= kept]
    ordered.by_input = by_input
    return ordered


def partial(work: Plan, landed: dict[int, float], filters: Filters | None = None) -> list[Result]:
    """What a run that failed part-way can show (``--partial``): the documents whose every
    text was scored, ranked and filtered as :func:`rank` does, then every other document, in
    input order, marked unscored (``scored`` False; -k and -s do not apply to them, since any
    of them might belong at the top)."""
    nan = float("nan")
    scores = [landed.get(position, nan) for position in range(len(work.texts))]
    # Documents (by number) with a text not scored: a chunk left out would make a lower bound
    # of the score, not the score.
    unfinished = {number for number, _, p in work.units if p not in landed}
    folded = list(fold(work, scores))  # one result per document with texts, in input order
    done = rank_results([r for r in folded if r.document.index not in unfinished], filters)
    left = [
        Result(0, nan, r.document, scored=False) for r in folded if r.document.index in unfinished
    ]
    return [*done, *left]


BUILT_AT_ONCE = 4096  # results built together when a ranking is iterated
SORT_PIECE = 1 << 18  # positions sorted at a time; longer rankings are merged from pieces


def _ranked(scores: array[float]) -> array[int]:
    """Positions by score, best first, ties in input order. A ranking longer than
    ``SORT_PIECE`` is sorted a piece at a time and merged (stably: a tie goes to the earlier
    piece), so that sorting a million scores never holds a million position and key objects
    at once."""
    count = len(scores)
    key = scores.__getitem__
    if count <= SORT_PIECE:
        return array("I", sorted(range(count), key=key, reverse=True))
    pieces = [
        array("I", sorted(range(start, min(start + SORT_PIECE, count)), key=key, reverse=True))
        for start in range(0, count, SORT_PIECE)
    ]
    return array("I", merge(*pieces, key=key, reverse=True))


class RankedDocuments(Sequence[Result]):
    """The ranking of a whole-document plan, held as document positions in rank order (an
    array) and built one result at a time when asked for: a million documents ranked cost
    eight bytes each, not a result object each. The same order and numbering as
    :func:`rank_results`: by score, ties by input order (stable sorts), ranks from 1, then
    the filters keep a head of the ranking."""

    __slots__ = ("_documents", "_scores", "order")

    def __init__(self, results: WholeResults, filters: Filters | None = None) -> None:
        scores = results.document_scores()
        count = len(scores)
        top_k = filters.top_k if filters is not None else None
        min_score = filters.min_score if filters is not None else None
        if top_k is not None and top_k < count:
            # nlargest is stable: equal scores keep input order, as the full sort does.
            order = array("I", nlargest(top_k, range(count), key=scores.__getitem__))
        else:
            order = _ranked(scores)
        if min_score is not None:
            kept = len(order)
            while kept and scores[order[kept - 1]] < min_score:  # the tail is the lowest
                kept -= 1
            del order[kept:]
        self.order = order
        self._scores = scores
        self._documents = results.work.documents

    def __len__(self) -> int:
        return len(self.order)

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        if isinstance(index, slice):
            return self._results(*index.indices(len(self)))
        if index < 0:
            index += len(self.order)
        if not 0 <= index < len(self.order):
            raise IndexError("rank out of range")
        return self._results(index, index + 1, 1)[0]

    def __iter__(self) -> Iterator[Result]:
        for start in range(0, len(self.order), BUILT_AT_ONCE):
            yield from self._results(start, min(start + BUILT_AT_ONCE, len(self.order)), 1)

    def _results(self, start: int, stop: int, step: int) -> Ranking:
        """The results of ranks ``start + 1`` … (``range(start, stop, step)``), built at once,
        in input order (memory order: a quarter faster to build and write at 100,000), as a
        :class:`Ranking` that knows them in input order too."""
        ranks = range(start, stop, step)
        order, scores, documents = self.order, self._scores, self._documents
        positions = [order[i] for i in ranks]
        by_position = sorted(range(len(positions)), key=positions.__getitem__)
        in_input_order = [positions[k] for k in by_position]
        built = (
            documents.build(in_input_order)
            if isinstance(documents, DocumentStore)
            else [documents[p] for p in in_input_order]
        )
        by_input = [
            Result(ranks[k] + 1, scores[p], d)
            for k, p, d in zip(by_position, in_input_order, built, strict=True)
        ]
        placed: list[Result] = [None] * len(by_input)  # type: ignore[list-item]  # all filled
        for k, result in zip(by_position, by_input, strict=True):
            placed[k] = result
        ranking = Ranking(placed)
        ranking.by_input = by_input
        return ranking


_input_order = attrgetter("document.index")
_score = attrgetter("score")
