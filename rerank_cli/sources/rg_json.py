"""``-F rg-json``: the JSON Lines of ``rg --json`` (``begin``, ``match``, ``context``, ``end``,
``summary``).

Each ``match`` event is a document; its scored text is the matched lines (``--with-path`` puts
``path:line: `` in front). ``context`` events attach to the nearest match of their group, as
for ``-F grep``; with ``--group`` a group is one document. A group is a run of events of one
file whose lines follow each other (by ``absolute_offset``, else ``line_number``): where rg's
text output would print ``--``. Text and paths arrive as ``{"text": …}`` or, when not UTF-8, as
base64 ``{"bytes": …}``; both are read. ``-o plain`` prints rg's text form, ``path:line:text``
(``path-line-text`` for context), with ``--`` between documents when there was context.
``jsonl`` output keeps ``path``, ``line_number``, ``absolute_offset`` and ``submatches``.

A line that is not an rg event is invalid (an error, or skipped with ``--skip-invalid``);
events of other types are ignored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError
from rerank_cli.sources.grep import DEFAULT_SEPARATOR, Entry, assemble
from rerank_cli.sources.records import (
    ReadOptions,
    ReadReport,
    chomp,
    handle_invalid,
    split_lines,
    strip_bom,
)

EVENTS = frozenset({"begin", "match", "context", "end", "summary"})


@dataclass(slots=True)
class Event:
    context: bool
    path: bytes | None
    lines: bytes
    line_number: int | None
    offset: int | None
    data: dict[str, Any]


def is_event(value: Any) -> bool:
    """Whether a parsed JSON value looks like an ``rg --json`` event (for format detection)."""
    return (
        isinstance(value, dict)
        and value.get("type") in EVENTS
        and isinstance(value.get("data"), dict)
    )


def _data(value: Any, what: str) -> bytes:
    """rg's ``{"text": …}`` or ``{"bytes": base64}``."""
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            # orjson refuses lone surrogates; surrogatepass keeps this total anyway.
            return str(value["text"]).encode("utf-8", errors="surrogatepass")
        if isinstance(value.get("bytes"), str):
            try:
                return base64.b64decode(value["bytes"], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{what}: invalid base64") from None
    raise ValueError(f'{what}: expected {{"text": …}} or {{"bytes": …}}')


def _number(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"{what}: expected a number")


def _event(value: dict[str, Any]) -> Event:
    data = value["data"]
    path = None if data.get("path") is None else _data(data["path"], "path")
    return Event(
        context=value["type"] == "context",
        path=path,
        lines=_data(data.get("lines"), "lines"),
        line_number=_number(data.get("line_number"), "line_number"),
        offset=_number(data.get("absolute_offset"), "absolute_offset"),
        data=data,
    )


def _printed(event: Event) -> bytes:
    """The event as rg's text output prints it: each line with ``path:line:`` in front."""
    sep = b"-" if event.context else b":"
    out = []
    for count, (_, line) in enumerate(split_lines(event.lines or b"\n")):
        prefix = b"" if event.path is None else event.path + sep
        if event.line_number is not None:
            prefix += str(event.line_number + count).encode() + sep
        out.append(prefix + line)
    return b"".join(out)


def _follows(previous: Event, event: Event) -> bool:
    if previous.path != event.path:
        return False
    if previous.offset is not None and event.offset is not None:
        return event.offset == previous.offset + len(previous.lines)
    if previous.line_number is not None and event.line_number is not None:
        count = sum(1 for _ in split_lines(previous.lines))
        return event.line_number == previous.line_number + count
    return True


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    entries: list[Entry] = []
    group = -1
    previous: Event | None = None
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw)
        if not body.strip():
            continue
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            handle_invalid(InputError("not an rg --json event", name, number), options, report)
            continue
        if not is_event(value):
            handle_invalid(InputError("not an rg --json event", name, number), options, report)
            continue
        if value["type"] not in ("match", "context"):
            previous = None  # begin/end/summary: a new file, a new group
            continue
        try:
            event = _event(value)
        except ValueError as error:
            handle_invalid(InputError(str(error), name, number), options, report)
            continue
        if previous is None or not _follows(previous, event):
            group += 1
        previous = event
        path = None if event.path is None else report.decode(event.path, name)
        fields: dict[str, Any] = {"path": path}
        for key in ("line_number", "absolute_offset", "submatches"):
            if key in event.data:
                fields[key] = event.data[key]
        entries.append(
            Entry(
                raw=_printed(event),
                text=report.decode(chomp(event.lines), name),
                path=path,
                line=event.line_number,
                context=event.context,
                group=group,
                number=number,
                fields=fields,
            )
        )
    separated = options.group or any(e.context for e in entries)
    return assemble(entries, name, options, DEFAULT_SEPARATOR if separated else None)
