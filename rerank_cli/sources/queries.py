"""``rerank batch``'s input: JSON lines, one query each —
``{"id": …, "query": …, "documents": [strings or objects], "instruction"?: …}``.

The whole file is read and checked before anything is sent (it is small next to what it
costs): an invalid line is ``F:N: …`` (exit 2). A line without ``id`` takes its line number;
two lines with one id are an error (``--resume`` and ``--shard`` go by id).

With ``--corpus`` a line is ``{"id", "query", "instruction"?}``: its documents are the corpus
(or, with ``--candidates``, the corpus documents the run names for its id). A line that brings
its own ``documents`` as well is an error: one source of documents per run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rerank_cli.core.documents import Document, Source
from rerank_cli.errors import InputError, UsageError
from rerank_cli.sources.jsonish import _MISSING, document_of
from rerank_cli.sources.records import (
    ReadOptions,
    ReadReport,
    chomp,
    is_blank,
    split_lines,
    strip_bom,
)


@dataclass
class Query:
    """One line of the query file."""

    id: Any  # a string or a number, as given; else the line number
    query: str
    documents: list[Document] = field(default_factory=list)  # blank documents left out
    instruction: str | None = None  # the line's own, overriding -I/--task
    line: int = 0
    # --candidates: the corpus index of each document (the line's own order is the run's)
    corpus_index: list[int] | None = None

    @property
    def key(self) -> bytes:
        """The id as JSON: what --resume and --shard compare (``1`` and ``"1"`` differ)."""
        return id_key(self.id)


def id_key(value: Any) -> bytes:
    return orjson.dumps(value)


def shard_of(key: bytes, shards: int) -> int:
    """The query's shard: the first 8 bytes of the SHA-256 of its id's JSON, big-endian, mod
    ``shards``. Stable across runs, machines and Python versions."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % shards


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (0 ≤ K < N) → (K, N)."""
    k, slash, n = text.partition("/")
    try:
        shard, shards = int(k), int(n)
    except ValueError:
        shard = shards = -1
    if not slash or shards < 1 or not 0 <= shard < shards:
        raise UsageError(f"--shard takes K/N with 0 ≤ K < N (e.g. 0/4), got {text!r}")
    return shard, shards


# --corpus: (query id, line number) → the line's documents and, when they are a subset of the
# corpus, their corpus indexes.
SharedDocuments = Callable[[Any, int], tuple[list[Document], list[int] | None]]


def read_queries(
    data: bytes,
    name: str,
    options: ReadOptions,
    report: ReadReport,
    shared: SharedDocuments | None = None,
) -> list[Query]:
    """Every query of the file, in file order; raises :class:`InputError` on the first
    invalid line."""
    queries: list[Query] = []
    seen: dict[bytes, int] = {}
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw)
        if not body.strip():
            continue
        try:
            value = orjson.loads(report.decode(body, name))
        except orjson.JSONDecodeError as error:
            reason = str(error).split(":", 1)[0]
            raise InputError(f"invalid JSON ({reason})", name, number) from None
        try:
            query = query_of(value, name, number, options, report, shared)
        except ValueError as error:
            raise InputError(str(error), name, number) from None
        key = query.key
        if key in seen:
            raise InputError(
                f"duplicate id {key.decode()} (first on line {seen[key]})", name, number
            )
        seen[key] = number
        queries.append(query)
    return queries


def query_of(
    value: Any,
    name: str,
    number: int,
    options: ReadOptions,
    report: ReadReport,
    shared: SharedDocuments | None = None,
) -> Query:
    """One line's query from its parsed JSON ``value`` (``number``: its line, the id when it
    has none; ``name``: the file, the documents' source). Raises ``ValueError`` with the
    reason the line is invalid."""
    if not isinstance(value, dict):
        raise ValueError('expected an object {"id", "query", "documents"}')
    query_id = value.get("id", number)
    if query_id is None or isinstance(query_id, (bool, list, dict)):
        raise ValueError("id must be a string or a number")
    text = value.get("query")
    if not isinstance(text, str):
        raise ValueError("query must be a string" if "query" in value else "no query")
    if is_blank(text):
        raise ValueError("the query is blank")
    instruction = value.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise ValueError("instruction must be a string")
    given = value.get("documents", _MISSING)
    if shared is not None:
        if given is not _MISSING:
            raise ValueError(
                "the line has its own documents and --corpus gives them too: "
                'with --corpus a line is {"id", "query"}'
            )
        documents, indexes = shared(query_id, number)
        return Query(query_id, text, documents, instruction or None, number, indexes)
    if given is _MISSING:
        raise ValueError("no documents (a list of strings or objects, or --corpus FILE)")
    if not isinstance(given, list):
        raise ValueError("documents must be a list of strings or objects")
    documents = []
    for position, item in enumerate(given):
        try:
            raw = orjson.dumps(item) + b"\n"
            document = document_of(item, raw, Source(name, number), options)
        except ValueError as error:
            raise ValueError(f"document {position}: {error}") from None
        if document is None:
            report.skip_blank()
        else:
            documents.append(document)
    return Query(query_id, text, documents, instruction or None, number)
