"""``-F lines``: one document per line; blank lines skipped, line numbers kept."""

from __future__ import annotations

from collections.abc import Iterator

from rerank_cli.core.documents import Document, Source
from rerank_cli.sources.records import ReadOptions, ReadReport, is_blank_line, strip_bom

# A line starting otherwise is not blank: no strip() needed. (ASCII whitespace, then the first
# bytes of the other whitespace: U+001C-U+001F, U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000.)
_BLANK_START = frozenset(b" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\xc2\xe1\xe2\xe3")


def read(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Iterator[Document]:
    data = strip_bom(data)
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
        yield Document(text, raw, Source(name, number))
