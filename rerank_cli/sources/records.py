"""What every reader shares: options, the report of what was skipped, decoding and line splitting.

A reader is a pure function ``read(data, name, options, report) -> Iterator[Document]`` over
the bytes of one input; it never prints (warnings go to the report) and never drops a record
silently (a skipped record is counted and warned about, or raises :class:`InputError`). Blank
lines are layout, not records: skipped, not counted. A blank document — a JSON text that is empty
or whitespace only, an empty argument — is never sent: skipped and counted, without a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError

BOM = b"\xef\xbb\xbf"
DEFAULT_TEXT_FIELDS = ("text", "document", "content", "body", "passage")


@dataclass(frozen=True)
class ReadOptions:
    format: str = "auto"
    field: str | None = None  # dotted path to the text in a JSON object
    id_field: str | None = None
    skip_invalid: bool = False
    with_path: bool = False  # grep/rg-json: score "path:line: text", not the text alone
    group: bool = False  # grep/rg-json: a match with its context lines is one document
    grep_root: str | None = None  # grep: where the paths in the input exist (default: cwd)


@dataclass
class ReadReport:
    """Collects warnings and counts; the CLI prints the warnings as they come."""

    on_warning: Callable[[str], None] | None = None
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    _replaced_in: set[str] = field(default_factory=set)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def skip(self, error: InputError) -> None:
        self.skipped += 1
        self.warn(f"{error.message} (skipped)")

    def skip_blank(self) -> None:
        """A blank document (an empty argument, a blank JSON text): never sent, counted."""
        self.skipped += 1

    def decode(self, raw: bytes, name: str) -> str:
        """UTF-8, invalid bytes become U+FFFD, with one warning per input."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if name not in self._replaced_in:
                self._replaced_in.add(name)
                self.warn(f"{name}: invalid UTF-8 replaced with U+FFFD")
            return raw.decode("utf-8", errors="replace")


Reader = Callable[[bytes, str, ReadOptions, ReadReport], Iterator[Document]]


def strip_bom(data: bytes) -> bytes:
    return data[len(BOM) :] if data.startswith(BOM) else data


def split_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)``; each raw line keeps its terminator (LF or CRLF).

    Only LF ends a line, as for grep: a lone CR stays part of the text.
    """
    start = 0
    number = 0
    size = len(data)
    while start < size:
        number += 1
        end = data.find(b"\n", start)
        if end < 0:
            yield number, data[start:]
            return
        yield number, data[start : end + 1]
        start = end + 1


def chomp(raw: bytes) -> bytes:
    """The line without its LF or CRLF terminator."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def is_blank(text: str) -> bool:
    """Empty or whitespace only: nothing to score, never sent."""
    return not text or text.isspace()


# The first byte of whitespace that ``bytes.strip`` leaves: U+001C-U+001F, and in UTF-8 U+0085
# and U+00A0 (C2), U+1680 (E1), U+2000-U+205F (E2), U+3000 (E3).
_OTHER_SPACE_START = frozenset(b"\x1c\x1d\x1e\x1f\xc2\xe1\xe2\xe3")


def is_blank_line(body: bytes) -> bool:
    """:func:`is_blank` of a line's bytes (terminator removed), as UTF-8: a line of no-break
    spaces is as blank as the same text in JSON. One ``strip`` for a line with letters."""
    rest = body.strip()
    if not rest:
        return True
    return rest[0] in _OTHER_SPACE_START and rest.decode("utf-8", "replace").isspace()


def handle_invalid(error: InputError, options: ReadOptions, report: ReadReport) -> None:
    """Raise ``error`` or, with ``--skip-invalid``, count and warn."""
    if not options.skip_invalid:
        raise error
    report.skip(error)
