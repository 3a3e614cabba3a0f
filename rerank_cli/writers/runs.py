"""``rerank batch``'s output: one JSON line per query, or a TREC run. Each query's output is
built whole, so that the job writes it with one call and flushes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from rerank_cli.core.documents import Result

FORMATS = ("jsonl", "trec")
TREC_TAG = "rerank"


def result_record(result: Result, with_text: bool = True) -> dict[str, Any]:
    """``rank``, ``index``, ``score``, then ``id`` (when the document has one) and ``text``."""
    document = result.document
    out: dict[str, Any] = {"rank": result.rank, "index": document.index, "score": result.score}
    if document.id is not None:
        out["id"] = document.id
    if with_text:
        out["text"] = document.text
    return out


def result_records(results: Sequence[Result], with_text: bool = True) -> list[dict[str, Any]]:
    """A query's ``results`` list, best first, as a batch line holds it (and a Ray row)."""
    return [result_record(result, with_text) for result in results]


def query_line(
    query_id: Any, query: str, results: Sequence[Result], with_text: bool = True
) -> bytes:
    """``{"id", "query", "results": […]}`` and a newline."""
    records = result_records(results, with_text)
    return orjson.dumps({"id": query_id, "query": query, "results": records}) + b"\n"


def error_record(code: int, message: str, status: int | None) -> dict[str, Any]:
    """A failed query's ``error``: ``{"code", "status"?, "message"}`` (code: the exit code the
    failure alone would give, 3 refused or 4 failed; status: the HTTP status, when one came)."""
    error: dict[str, Any] = {"code": code}
    if status is not None:
        error["status"] = status
    error["message"] = message
    return error


def error_line(query_id: Any, query: str, code: int, message: str, status: int | None) -> bytes:
    """``{"id", "query", "error": {"code", "status"?, "message"}}`` and a newline."""
    error = error_record(code, message, status)
    return orjson.dumps({"id": query_id, "query": query, "error": error}) + b"\n"


def trec_id(value: Any) -> str:
    """An id as a TREC run holds it: its text (a string as is, a number as written)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def trec_lines(query_id: Any, results: Sequence[Result], tag: str = TREC_TAG) -> bytes:
    """``qid Q0 docid rank score tag`` per result; docid is the document's id (--id-field),
    else its index in the query's documents."""
    qid = trec_id(query_id)
    lines = []
    for result in results:
        document = result.document
        docid = trec_id(document.id if document.id is not None else document.index)
        lines.append(f"{qid} Q0 {docid} {result.rank} {result.score!r} {tag}\n")
    return "".join(lines).encode("utf-8")
