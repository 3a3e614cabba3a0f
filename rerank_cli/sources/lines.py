"""``-F lines``: one document per line; blank lines skipped, line numbers kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rerank_cli.core.documents import Document, Source
from rerank_cli.sources.records import BOM, ReadOptions, ReadReport, is_blank_line, strip_bom

# A line starting otherwise is not blank: no strip() needed. (ASCII whitespace, then the first
# bytes of the other whitespace: U+001C-U+001F, U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000.)
_BLANK_START = frozenset(b" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\xc2\xe1\xe2\xe3")


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    return _documents(strip_bom(data), name, report, 0)


def read_blocks(
    chunks: Iterable[bytes], name: str, options: ReadOptions, report: ReadReport
) -> Iterator[list[Document]]:
    """:func:`read` over an input that arrives in chunks (a pipe): the documents of each run
    of whole lines, a list as soon as its last LF has arrived, numbered as ``read`` numbers
    them over the whole input."""
    parts: list[bytes] = []
    before = 0  # lines in the blocks already read
    started = False  # the BOM, if any, is behind us
    for chunk in chunks:
        end = chunk.rfind(b"\n")
        if end < 0 or (not started and sum(map(len, parts)) + end + 1 < len(BOM)):
            parts.append(chunk)
            continue
        parts.append(chunk[: end + 1])
        block = b"".join(parts)
        parts = [chunk[end + 1 :]]
        if not started:
            block, started = strip_bom(block), True
        yield list(_documents(block, name, report, before))
        before += block.count(b"\n")
    rest = b"".join(parts)
    if not started:
        rest = strip_bom(rest)
    if rest:
        yield list(_documents(rest, name, report, before))


def _documents(data: bytes, name: str, report: ReadReport, before: int) -> Iterator[Document]:
    """The documents of ``data``, whole lines (the last one may lack its LF) that follow
    ``before`` lines of the same input."""
    if not data:
        return
    # Split once in C rather than line by line: this reader is most of a large run's reading.
    # Only LF ends a line, as for grep: a lone CR stays part of the text.
    raws = data.split(b"\n")
    ended = raws[-1] == b""  # the input ends with LF: no line after it
    if ended:
        raws.pop()
    try:
        # LF is one byte in UTF-8 and never part of another character: the two splits align.
        texts: list[str] | None = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        texts = None  # line by line, so that invalid bytes become U+FFFD with a warning
    unterminated = 0 if ended else len(raws)  # the number of a last line without LF
    for number, line in enumerate(raws, 1):
        if (not line or line[0] in _BLANK_START) and is_blank_line(line):
            continue
        if number == unterminated:
            body, raw = line, line  # a CR here ends no line: it stays in the text
        else:
            body = line[:-1] if line[-1:] == b"\r" else line  # CRLF
            raw = line + b"\n"
        if texts is None:
            text = report.decode(body, name)
        else:
            text = texts[number - 1]
            if len(body) < len(line):
                text = text[:-1]
        yield Document(text, raw, Source(name, before + number))
