"""``-F grep`` (``--grep``): the text output of grep and ripgrep, ranked line by line.

Each matching line is one document; its scored text is the match text (no path, no line
number, no colour codes; ``--with-path`` puts ``path:line: `` in front). Context lines
(``-A/-B/-C``) are not scored: each is attached to the nearest match of its group (the earlier
one on a tie) and printed with it, so ``-o plain`` prints the input lines unchanged, colour codes
included, in ranked order, with ``--`` between documents when the input had context. With
``--group`` a whole group (a match and its context, as rg/grep print it between ``--`` lines)
is one document. Lines that are entirely blank are skipped.

How a line is split (the ambiguity rule):

1. Colour codes are removed before parsing. A line that is exactly ``--`` separates groups.
2. With ``-0`` (``rg -0``, ``grep -Z``) the path is everything before the first NUL byte; the
   rest is ``line:col:text``, ``line:text``, ``line-text`` (context) or the text.
3. Otherwise one shape is chosen for the whole input, the first of these that most lines fit:
   ``path:line[:col]:text`` (``-n``, ``--column``), ``path:text`` (``-H``), ``line[:col]:text``
   (one file with ``-n``), ``text``. Context lines use ``-`` for ``:`` and carry no column; a
   shape with line numbers needs at least one match line (``:``); a column is read when most
   match lines carry one. The shape is judged on the first 500 lines: if any path there exists
   on disk (rule 4), only existing paths count; if none does, any path counts that is not made
   of digits alone and holds no ``": "`` (``TODO: fix 1:2:3`` stays text). ``path:text``
   counts only with paths on disk, so plain text with colons stays text.
4. Within that shape a line may still split at several places (``a:1:b.txt:2:text``, a path
   with ``-12-`` in a context line, ``C:\\x.py``: a drive letter never ends a path). The split
   whose path exists on disk relative to ``--grep-root`` (default: the working directory) wins,
   the leftmost if several do; ``<stdin>`` and ``(standard input)`` count as existing.
5. Without a path on disk, a line whose splits all give one path is settled by it. A line that
   can be a match then takes the path of the nearest settled line in its group if one of its
   splits has it, else its leftmost match split; a context-only line takes the path of the
   nearest line resolved so far in its group, else its leftmost split. Paths of digits only
   come last.
6. A line that fits none of this is text. Nothing raises: any input gives documents.
"""

from __future__ import annotations

import bisect
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_cli.core.documents import Document, Source
from rerank_cli.sources.ansi import strip as strip_colour
from rerank_cli.sources.records import (
    ReadOptions,
    ReadReport,
    chomp,
    split_lines,
    strip_bom,
)

DEFAULT_SEPARATOR = b"--\n"
STDIN_NAMES = frozenset({b"<stdin>", b"(standard input)"})  # what rg and grep call stdin

# Shapes, most specific first: path, line, column, text.
PLC, PL, P, LC, L, T = "plc", "pl", "p", "lc", "l", "t"
SHAPES = (PLC, PL, P, LC, L, T)
_PATH_SHAPES = frozenset({PLC, PL, P})

_MAX_PATH = 4096  # a path is looked for in the first bytes of a line only
_MAX_PATH_SPLITS = 32  # `path:text` candidates tried per line (each may cost a stat)
_SAMPLE = 500  # lines the shape is inferred from
_NEAR = 50  # how far to look for a neighbour's path

# Numbers are capped at 18 digits: int() of a huge digit string is slow or refused.
_PL_SPLITS = re.compile(rb"(?=:(?P<line>\d{1,18}):|-(?P<context>\d{1,18})-)")
_PLC_SPLITS = re.compile(rb"(?=:(?P<line>\d{1,18}):(?P<column>\d{1,18}):|-(?P<context>\d{1,18})-)")
_START_LINE_COL = re.compile(rb"(\d{1,18}):(\d{1,18}):")
_START_LINE = re.compile(rb"(\d{1,18}):")
_START_CONTEXT = re.compile(rb"(\d{1,18})-")
_SPLIT_CHARS = re.compile(rb"[:-]")


@dataclass(slots=True)
class Split:
    """One way to read a line: where the path ends (``at``), what it says, and the text."""

    path: bytes | None
    line: int | None
    column: int | None
    context: bool
    text: bytes
    at: int = 0
    sure: bool = False  # the path ended at NUL: no guess involved


@dataclass(slots=True)
class Entry:
    """A parsed input line (or rg event) on its way to becoming (part of) a document."""

    raw: bytes
    text: str
    path: str | None
    line: int | None
    context: bool
    group: int
    number: int  # line in the input, for a Source when the path is unknown
    fields: dict[str, Any] = field(default_factory=dict)


def _plausible_path(path: bytes | None) -> bool:
    """Without the file on disk to prove it, a path does not hold ``": "`` or start with a
    space: ``TODO: fix 1:2:3`` is text with colons, not the file ``TODO: fix 1`` at line 2."""
    return path is not None and b": " not in path and not path[:1].isspace()


def _all_digits(path: bytes | None) -> bool:
    return path is not None and path.isdigit()


def _start_splits(body: bytes, with_column: bool) -> list[Split]:
    """``line[:col]:text`` or ``line-text`` at the start of ``body``."""
    if with_column and (m := _START_LINE_COL.match(body)):
        return [Split(None, int(m[1]), int(m[2]), False, body[m.end() :])]
    if not with_column and (m := _START_LINE.match(body)):
        return [Split(None, int(m[1]), None, False, body[m.end() :])]
    if m := _START_CONTEXT.match(body):
        return [Split(None, int(m[1]), None, True, body[m.end() :])]
    return []


def candidates(body: bytes, shape: str) -> list[Split]:
    """Every split of one line (colour codes and terminator removed) in ``shape``, leftmost
    first."""
    if shape == T:
        return [Split(None, None, None, False, body)]
    nul = body.find(b"\0")
    if shape in _PATH_SHAPES and nul >= 0:
        path, rest = body[:nul], body[nul + 1 :]
        if shape == P:
            return [Split(path, None, None, False, rest, nul, True)]
        found = _start_splits(rest, with_column=shape == PLC)
        for split in found:
            split.path, split.at, split.sure = path, nul, True
        return found
    if shape in (LC, L):
        return _start_splits(body, with_column=shape == LC)
    splits: list[Split] = []
    if shape == P:
        for m in _SPLIT_CHARS.finditer(body, 1, _MAX_PATH):
            at = m.start()
            if not _drive_letter(body, at):
                splits.append(Split(body[:at], None, None, body[at] == 0x2D, body[at + 1 :], at))
                if len(splits) >= _MAX_PATH_SPLITS:
                    break
        return splits
    # Zero-width matches, so that overlapping places (`a:1:2:3:`) are all found.
    finder = _PLC_SPLITS if shape == PLC else _PL_SPLITS
    for m in finder.finditer(body, 1, _MAX_PATH):
        at = m.start()
        if _drive_letter(body, at):
            continue
        if m["context"] is not None:  # `-12-`: context lines carry no column
            line, column, context, end = int(m["context"]), None, True, m.end("context") + 1
        else:
            line, context = int(m["line"]), False
            column = int(m["column"]) if shape == PLC else None
            end = m.end("column" if shape == PLC else "line") + 1
        splits.append(Split(body[:at], line, column, context, body[end:], at))
    return splits


def looks_like_grep(data: bytes, root: str | None = None, sample: int = 50) -> bool:
    """For ``-F auto``: most of the first lines are ``path:line:`` matches (or ``path-line-``
    context) whose path is a file on disk — what ``rg -n`` / ``grep -n`` print. Plain text
    that merely contains colons has no such files, so it stays ``lines``."""
    bodies = []
    for _, raw in split_lines(data):
        body = strip_colour(chomp(raw))
        if body.strip() and body != b"--":
            bodies.append(body)
            if len(bodies) == sample:
                break
    if not bodies:
        return False
    disk = Disk(root)
    fitting = sum(
        1 for body in bodies if any(disk.has(s.path) for s in candidates(body, PL) if s.path)
    )
    return fitting > len(bodies) * 0.8


def _drive_letter(body: bytes, at: int) -> bool:
    """``C:\\`` or ``C:/``: a drive letter, not the end of a path."""
    return at == 1 and body[:1].isalpha() and body[2:3] in (b"\\", b"/")


class Disk:
    """Answers "is this a file?" for paths from the input, relative to a root, with a cache."""

    def __init__(self, root: str | None) -> None:
        self.root = os.fsencode(root) if root else b""
        self._known: dict[bytes, bool] = {}

    def has(self, path: bytes | None) -> bool:
        if path is None or not path:
            return False
        if path in STDIN_NAMES:
            return True
        known = self._known.get(path)
        if known is None:
            try:
                mode = os.stat(os.path.join(self.root, path) if self.root else path).st_mode
                known = not stat.S_ISDIR(mode)
            except (OSError, ValueError):
                known = False
            self._known[path] = known
        return known

    def sure(self, split: Split) -> bool:
        return split.sure or self.has(split.path)


def infer_shape(bodies: Sequence[bytes], disk: Disk) -> str:
    """The first shape most lines fit (see the module docstring, rule 3)."""
    sample = [b for b in bodies[:_SAMPLE] if b.strip()]
    if not sample:
        return T
    half = len(sample) / 2
    per_line = [candidates(body, PL) for body in sample]
    # On disk or not: once any path is found, paths must exist to count; else any path that is
    # not all digits counts.
    on_disk = any(disk.sure(s) for splits in per_line for s in splits) or any(
        disk.sure(s) for body in sample for s in candidates(body, P)
    )

    def counts(split: Split) -> bool:
        if on_disk:
            return disk.sure(split)
        return not _all_digits(split.path) and _plausible_path(split.path)

    fitting = [[s for s in splits if counts(s)] for splits in per_line]
    matches = [
        body
        for body, splits in zip(sample, fitting, strict=True)
        if any(not s.context for s in splits)
    ]
    if sum(1 for splits in fitting if splits) > half and matches:
        with_column = sum(
            1 for body in matches if any(counts(s) for s in candidates(body, PLC) if not s.context)
        )
        return PLC if with_column > len(matches) / 2 else PL
    if sum(1 for body in sample if any(disk.sure(s) for s in candidates(body, P))) > half:
        return P
    numbered = [candidates(body, L) for body in sample]
    line_matches = [
        body
        for body, splits in zip(sample, numbered, strict=True)
        if splits and not splits[0].context
    ]
    if sum(1 for splits in numbered if splits) > half and line_matches:
        with_column = sum(1 for body in line_matches if candidates(body, LC))
        return LC if with_column > len(line_matches) / 2 else L
    return T


def _fallback(body: bytes, shape: str, disk: Disk) -> list[Split]:
    """Splits of a line in the input's shape, else in the next shape it fits (a guessed
    ``path:text`` only if the path exists)."""
    for index in range(SHAPES.index(shape), len(SHAPES)):
        here = SHAPES[index]
        splits = candidates(body, here)
        if here == P and here != shape:
            splits = [s for s in splits if disk.sure(s)]
        if splits:
            return splits
    return []  # unreachable: T always fits


def _best(splits: Sequence[Split], prefer: Iterable[bytes | None] = ()) -> Split:
    """A path the neighbours have, else a match over context, a real path over digits, then
    the leftmost."""
    for path in prefer:
        for split in splits:
            if split.path == path:
                return split
    return min(splits, key=lambda s: (_all_digits(s.path), s.context, s.at))


def resolve(bodies: Sequence[bytes], groups: Sequence[int], disk: Disk, shape: str) -> list[Split]:
    """One split per line (rules 4 and 5 of the module docstring)."""
    options = [_fallback(body, shape, disk) for body in bodies]
    chosen: list[Split | None] = [None] * len(bodies)
    for index, splits in enumerate(options):
        sure = next((s for s in splits if disk.sure(s)), None)  # the leftmost on disk
        if sure is not None:
            chosen[index] = sure
        elif len({s.path for s in splits}) == 1:
            chosen[index] = _best(splits)
    pending = [index for index, split in enumerate(chosen) if split is None]
    # Lines that can be matches look at settled lines only; context-only lines then also at
    # the lines just resolved.
    settled = [index for index, split in enumerate(chosen) if split is not None]
    found = {
        index: _best(options[index], _near(settled, chosen, groups, index))
        for index in pending
        if any(not s.context for s in options[index])
    }
    for index, split in found.items():
        chosen[index] = split
    resolved = [index for index, split in enumerate(chosen) if split is not None]
    for index in pending:
        if chosen[index] is None:
            chosen[index] = _best(options[index], _near(resolved, chosen, groups, index))
    return [
        c if c is not None else Split(None, None, None, False, b)
        for c, b in zip(chosen, bodies, strict=True)
    ]


def _near(
    resolved: Sequence[int], chosen: Sequence[Split | None], groups: Sequence[int], index: int
) -> Iterator[bytes | None]:
    """Paths of the ``resolved`` lines (sorted indices) in the group of line ``index`` and
    within reach, nearest first (the earlier on a tie)."""
    right = bisect.bisect_right(resolved, index)
    left = right - 1
    if left >= 0 and resolved[left] == index:
        left -= 1
    group = groups[index]
    while True:
        # Groups grow with the index: once a side leaves the group, it is done.
        before = index - resolved[left] if left >= 0 and groups[resolved[left]] == group else None
        after = (
            resolved[right] - index
            if right < len(resolved) and groups[resolved[right]] == group
            else None
        )
        if before is not None and before <= _NEAR and (after is None or before <= after):
            other, left = resolved[left], left - 1
        elif after is not None and after <= _NEAR:
            other, right = resolved[right], right + 1
        else:
            return
        split = chosen[other]
        if split is not None:
            yield split.path


def assemble(
    entries: Sequence[Entry], name: str, options: ReadOptions, separator: bytes | None
) -> Iterator[Document]:
    """Documents from parsed entries: one per match with its context attached, or one per
    group with ``--group``. ``separator`` (None: none) goes between documents in plain output.
    """
    if options.group:
        by_group: dict[int, list[Entry]] = {}
        for entry in entries:
            by_group.setdefault(entry.group, []).append(entry)
        for members in by_group.values():
            main = next((e for e in members if not e.context), members[0])
            text = "\n".join(e.text for e in members)
            yield _document(main, members, text, name, options, separator)
        return
    owner = _owners(entries)
    attached: dict[int, list[Entry]] = {}
    for index, entry in enumerate(entries):
        attached.setdefault(owner[index], []).append(entry)
    for index in sorted(attached):
        main = entries[index]
        yield _document(main, attached[index], main.text, name, options, separator)


def _owners(entries: Sequence[Entry]) -> list[int]:
    """For each entry, the index of the match it belongs to: itself for a match; for a context
    line the nearest match of its group (the earlier on a tie), or itself if there is none."""
    size = len(entries)
    before: list[int | None] = [None] * size
    after: list[int | None] = [None] * size
    last: int | None = None
    for index, entry in enumerate(entries):
        if last is not None and entries[last].group != entry.group:
            last = None
        if not entry.context:
            last = index
        before[index] = last
    last = None
    for index in range(size - 1, -1, -1):
        entry = entries[index]
        if last is not None and entries[last].group != entry.group:
            last = None
        if not entry.context:
            last = index
        after[index] = last
    owners: list[int] = []
    for index in range(size):
        prev, nxt = before[index], after[index]
        if prev is None and nxt is None:
            owners.append(index)
        elif nxt is None or (prev is not None and index - prev <= nxt - index):
            owners.append(prev if prev is not None else index)
        else:
            owners.append(nxt)
    return owners


def _document(
    main: Entry,
    members: Sequence[Entry],
    text: str,
    name: str,
    options: ReadOptions,
    separator: bytes | None,
) -> Document:
    if options.with_path and main.path is not None:
        where = main.path if main.line is None else f"{main.path}:{main.line}"
        text = f"{where}: {text}"
    if main.path is not None:
        source = Source(main.path, main.line)
    else:
        source = Source(name, main.line if main.line is not None else main.number)
    return Document(
        text=text,
        raw=b"".join(e.raw for e in members),
        source=source,
        fields=dict(main.fields or ()),
        separator=separator or b"",
    )


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    raws: list[bytes] = []
    bodies: list[bytes] = []
    numbers: list[int] = []
    cuts: list[int] = []  # the `--` group of each line
    separator: bytes | None = None
    group = 0
    for number, raw in split_lines(strip_bom(data)):
        body = strip_colour(chomp(raw))
        if body == b"--":
            if separator is None:
                separator = raw if raw.endswith(b"\n") else raw + b"\n"
            group += 1
            continue
        if not body.strip():
            continue
        raws.append(raw)
        bodies.append(body)
        numbers.append(number)
        cuts.append(group)
    disk = Disk(options.grep_root)
    shape = infer_shape(bodies, disk)
    splits = resolve(bodies, cuts, disk, shape)
    entries: list[Entry] = []
    group = -1
    previous: Split | None = None
    for index, split in enumerate(splits):
        # A group ends at `--`, where the path changes, or where line numbers are not
        # consecutive: where rg and grep would print `--` with context on.
        if previous is None or cuts[index] != cuts[index - 1] or not _follows(previous, split):
            group += 1
        previous = split
        path = None if split.path is None else report.decode(split.path, name)
        fields: dict[str, Any] = {"path": path, "line": split.line}
        if split.column is not None:
            fields["column"] = split.column
        entries.append(
            Entry(
                raw=raws[index],
                text=report.decode(split.text, name),
                path=path,
                line=split.line,
                context=split.context,
                group=group,
                number=numbers[index],
                fields=fields,
            )
        )
    # `--` between documents when the input had context (or with --group), as rg prints it.
    separated = options.group or separator is not None or any(e.context for e in entries)
    return assemble(entries, name, options, (separator or DEFAULT_SEPARATOR) if separated else None)


def _follows(previous: Split, split: Split) -> bool:
    if previous.path != split.path:
        return False
    if previous.line is None and split.line is None:
        return True
    return previous.line is not None and split.line == previous.line + 1
