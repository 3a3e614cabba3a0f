"""``-F jsonl`` (one JSON value per line) and ``-F json`` (one array): objects or strings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from rerank_cli.core.documents import Document, Source
from rerank_cli.errors import InputError
from rerank_cli.sources.records import (
    DEFAULT_TEXT_FIELDS,
    ReadOptions,
    ReadReport,
    chomp,
    handle_invalid,
    is_blank,
    split_lines,
    strip_bom,
)

_MISSING = object()


def lookup(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``meta.body``), or ``_MISSING``."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def json_kind(value: Any) -> str:
    """A JSON value's kind in JSON's words (``null``, ``an object``), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"  # not from JSON: only the Python API passes these


def text_of(value: Any, options: ReadOptions, kind: Callable[[Any], str] = json_kind) -> str:
    """The text to score in one JSON record; raises ``ValueError`` with the reason, naming
    values by ``kind``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"the record is {kind(value)} (expected an object or a string)")
    if options.field:
        text = lookup(value, options.field)
        if text is _MISSING:
            raise ValueError(f"no field {options.field!r}")
        where = options.field
    else:
        for where in DEFAULT_TEXT_FIELDS:
            if where in value:
                text = value[where]
                break
        else:
            names = ", ".join(DEFAULT_TEXT_FIELDS)
            raise ValueError(f"no text field (looked for {names}; choose one with --field)")
    if isinstance(text, str):
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return str(text)
    raise ValueError(f"{where} is {kind(text)} (expected a string)")


def document_of(value: Any, raw: bytes, source: Source, options: ReadOptions) -> Document | None:
    """A JSON value's document (its text at ``--field``, its id at ``--id-field``), or
    ``None`` when its text is blank; raises ``ValueError`` with the reason it has none."""
    text = text_of(value, options)
    if is_blank(text):
        return None
    doc_id = None
    if options.id_field and isinstance(value, dict):
        found = lookup(value, options.id_field)
        doc_id = None if found is _MISSING else found
    return Document(
        text=text,
        raw=raw,
        source=source,
        record=value if isinstance(value, dict) else None,
        id=doc_id,
    )


def _reason(error: orjson.JSONDecodeError) -> str:
    return str(error).split(":", 1)[0]


def read_jsonl(
    data: bytes, name: str, options: ReadOptions, report: ReadReport
) -> Iterator[Document]:
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw)
        if not body.strip():
            continue
        try:
            value = orjson.loads(report.decode(body, name))
        except orjson.JSONDecodeError as error:
            error_ = InputError(f"invalid JSON ({_reason(error)})", name, number)
            handle_invalid(error_, options, report)
            continue
        try:
            document = document_of(value, raw, Source(name, number), options)
        except ValueError as error:
            handle_invalid(InputError(str(error), name, number), options, report)
            continue
        if document is None:
            report.skip_blank()
        else:
            yield document


def read_json(
    data: bytes, name: str, options: ReadOptions, report: ReadReport
) -> Iterator[Document]:
    data = strip_bom(data)
    try:
        values = orjson.loads(report.decode(data, name))
    except orjson.JSONDecodeError as error:
        # A broken array cannot be resumed: even with --skip-invalid this is fatal.
        raise InputError(f"invalid JSON ({_reason(error)})", name, error.lineno) from None
    if not isinstance(values, list):
        raise InputError("expected a JSON array of strings or objects", name, 1)
    for position, value in enumerate(values):
        source = Source(name, None)  # elements of one array have no line of their own
        try:
            document = document_of(value, orjson.dumps(value) + b"\n", source, options)
        except ValueError as error:
            handle_invalid(InputError(f"element {position}: {error}", name), options, report)
            continue
        if document is None:
            report.skip_blank()
        else:
            yield document
