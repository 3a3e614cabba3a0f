"""Readers turn the bytes of one input into documents; :func:`read` picks one by format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice

import orjson

from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError, UsageError
from rerank_cli.sources import grep, jsonish, lines, nul, paragraphs, rg_json
from rerank_cli.sources.ansi import strip as strip_colour
from rerank_cli.sources.records import (
    Reader,
    ReadOptions,
    ReadReport,
    chomp,
    split_lines,
    strip_bom,
)

__all__ = [
    "FORMATS",
    "ReadOptions",
    "ReadReport",
    "detect",
    "in_blocks",
    "is_binary",
    "read",
    "read_blocks",
]

SAMPLE_LINES = 50  # what auto-detection reads of an input: its first non-blank lines
BINARY_WINDOW = 8192  # a NUL byte in the first 8 KB makes an input binary, as for grep and rg
# Formats whose input may hold NUL bytes by design: -0 records are NUL-separated, and rg --json
# carries a binary file's bytes as base64 (never a raw NUL).
NUL_FORMATS = frozenset({"nul", "rg-json"})

FORMATS: dict[str, Reader] = {
    "lines": lines.read,
    "jsonl": jsonish.read_jsonl,
    "json": jsonish.read_json,
    "grep": grep.read,
    "rg-json": rg_json.read,
    "nul": nul.read,
    "paragraphs": paragraphs.read,
}


def detect(data: bytes, grep_root: str | None = None) -> str:
    """``json`` if the input starts with ``[``; if its first non-blank line starts with ``{``,
    ``rg-json`` when that is an ``rg --json`` event, else ``jsonl`` (valid or not: a broken first
    line is reported as such, not read as text); ``jsonl`` too when every one of the first
    non-blank lines is a JSON string (or object); ``grep`` when most of the first lines are
    ``path:line:text`` with the path a file on disk; else ``lines``."""
    head = strip_bom(data).lstrip()
    if head.startswith(b"[") and _looks_like_json_array(head):
        return "json"
    for _, raw in split_lines(head):
        line = chomp(raw).strip()
        if not line:
            continue
        if line.startswith(b"{"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                return "jsonl"
            return "rg-json" if rg_json.is_event(value) else "jsonl"
        if line.startswith(b'"') and _json_strings(head):
            return "jsonl"
        return "grep" if grep.looks_like_grep(head, grep_root) else "lines"
    return "lines"


def _json_strings(head: bytes, sample: int = SAMPLE_LINES) -> bool:
    """Every one of the first ``sample`` non-blank lines is a JSON string or object: JSON lines
    of bare strings. A quotation in text (``"To be," he said``) is not one."""
    seen = 0
    for _, raw in split_lines(head):
        line = chomp(raw).strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(value, (str, dict)):
            return False
        seen += 1
        if seen == sample:
            break
    return True


def _looks_like_json_array(head: bytes) -> bool:
    """An array of strings or objects starts ``["`` or ``[{`` (or ``[`` alone on its line);
    a log line such as ``[INFO] started`` or ``[2026-01-01 12:00] …`` does not."""
    rest = head[1:].lstrip(b" \t\r")
    return rest[:1] in (b'"', b"{", b"\n", b"]") or rest == b""


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    fmt = detect(data, options.grep_root) if options.format == "auto" else options.format
    try:
        reader = FORMATS[fmt]
    except KeyError:
        raise UsageError(f"unknown input format {fmt!r}") from None
    if fmt not in NUL_FORMATS and is_binary(data, fmt):
        # Nothing of it is sent: a binary file read as lines is hundreds of garbage documents.
        raise InputError(
            "binary file (a NUL byte in the first 8 KB); for NUL-separated records use -0", name
        )
    return reader(data, name, options, report)


def is_binary(data: bytes, fmt: str) -> bool:
    """A NUL byte in the first 8 KB. For ``grep``, a NUL that ends a line's path (``grep -Z``,
    ``rg -0``: one per line, after a non-empty path) is the format's own."""
    window = data[:BINARY_WINDOW]
    if b"\0" not in window:
        return False
    if fmt != "grep":
        return True
    return any(line.count(b"\0") > 1 or line.startswith(b"\0") for line in window.split(b"\n"))


BLOCK = 4096  # documents per block, for readers that read their input whole
HEAD_LIMIT = 1 << 20  # a head that has not shown enough lines by then: read the input whole


def read_blocks(
    chunks: Iterable[bytes], name: str, options: ReadOptions, report: ReadReport
) -> Iterator[Sequence[Document]]:
    """:func:`read` over an input that arrives in chunks (a pipe, a file read piece by
    piece), in blocks of documents. Lines (``-F lines``, or what auto-detection finds to be
    lines) are read as they arrive, a block per run of whole lines; every other format is read
    whole first. Detection and the binary check see the same as :func:`read` would: they read
    only the input's head — its first 8 KB and first ``SAMPLE_LINES`` lines of text — and the
    head is read before deciding."""
    pieces = iter(chunks)
    head: list[bytes] = []
    size = 0
    sampled = 0  # complete lines that detection samples (grep's rule: text, not ``--``)
    partial = b""
    ended = True
    for chunk in pieces:
        head.append(chunk)
        size += len(chunk)
        if sampled <= SAMPLE_LINES:  # counted only as far as detection looks
            complete = (partial + chunk).split(b"\n")
            partial = complete.pop()
            for line in complete:
                sampled += _sampled_line(line)
                if sampled > SAMPLE_LINES:
                    break
        detecting = options.format == "auto"
        if size >= HEAD_LIMIT or (
            size >= BINARY_WINDOW and (not detecting or sampled > SAMPLE_LINES)
        ):
            ended = False
            break
    first = b"".join(head)
    if not ended and options.format == "auto" and sampled <= SAMPLE_LINES:
        # A head of blank lines: detection may look further, so it sees all of it.
        first, ended = first + b"".join(pieces), True
    fmt = detect(first, options.grep_root) if options.format == "auto" else options.format
    if fmt != "lines" or ended:
        data = first if ended else first + b"".join(pieces)
        yield from in_blocks(read(data, name, options, report))
        return
    if is_binary(first, fmt):
        raise InputError(
            "binary file (a NUL byte in the first 8 KB); for NUL-separated records use -0", name
        )
    yield from lines.read_blocks(chain([first], pieces), name, options, report)


def _sampled_line(raw: bytes) -> bool:
    body = strip_colour(chomp(raw + b"\n"))
    return bool(body.strip()) and body != b"--"


def in_blocks(documents: Iterable[Document]) -> Iterator[list[Document]]:
    """``documents`` in lists of ``BLOCK``."""
    documents = iter(documents)
    while block := list(islice(documents, BLOCK)):
        yield block
