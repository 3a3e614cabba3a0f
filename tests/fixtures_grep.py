"""A source tree for grep/rg pipelines, and an oracle that knows where every TODO is.

The tree has the awkward cases of issue 3: a path with a colon, a path with ``-12-``, a path
with spaces, a non-UTF-8 file, CRLF lines and a binary file. Every TODO line has distinct words,
so the lexical engine gives a distinct order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FILES: dict[str, bytes] = {
    "src/retry.py": (
        b"import time\n"
        b"# TODO retry the connection with exponential backoff\n"
        b"def connect():\n"
        b"    pass\n"
        b"\n"
        b"# TODO log the timeout in seconds\n"
        b"# TODO:1:2:3 looks like a prefix\n"
        b"x = 1\n"
    ),
    "weird:name.txt": b"x\ny\nTODO: fix 1:2:3 parser colon\nz\n",
    "x-12-y.txt": b"a-12-b\nTODO dash path cleanup\nc-3-d\n",
    "dir with spaces/b c.txt": b"TODO spaced directory move\nline\n",
    "latin1.txt": b"caf\xe9 TODO latin encoding\nnext\n",
    "crlf.txt": b"crlf TODO windows endings\r\nnext\r\n",
    "bin.dat": b"bin\0TODO binary blob\n",
}
BINARY = frozenset({"bin.dat"})
PATTERN = "TODO"


@dataclass(frozen=True)
class Match:
    path: str
    line: int
    text: str  # as the reader should score it: decoded with U+FFFD, no terminator


def build(root: Path) -> Path:
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def matches(files: set[str] | None = None) -> list[Match]:
    """Every line with TODO in the text files (binary files are skipped by rg and grep)."""
    found = []
    for name, content in FILES.items():
        if name in BINARY or (files is not None and name not in files):
            continue
        for number, line in enumerate(content.split(b"\n"), 1):
            if PATTERN.encode() in line:
                text = line.rstrip(b"\r").decode("utf-8", errors="replace")
                found.append(Match(name, number, text))
    return found


_COLOUR = re.compile(rb"\x1b\[[0-9;]*[mK]")


def plain_line(line: bytes) -> bytes:
    """The line without colour codes and terminator."""
    return _COLOUR.sub(b"", line.rstrip(b"\n").removesuffix(b"\r"))


def oracle(line: bytes) -> tuple[str | None, int | None, bool, str]:
    """(path, line, is_context, text) of one output line, from knowing the tree's paths: an
    independent reading to check the reader against."""
    body = plain_line(line)
    for name in sorted(FILES, key=len, reverse=True):
        for prefix in (name.encode(), b"./" + name.encode()):
            if body.startswith(prefix) and body[len(prefix) : len(prefix) + 1] in (
                b":",
                b"-",
                b"\0",
            ):
                rest = body[len(prefix) :]
                sep, rest = rest[:1], rest[1:]
                m = re.match(rb"(\d+)([:-])(?:(\d+):)?", rest)
                if m:
                    context = m[2] == b"-"
                    return name, int(m[1]), context, rest[m.end() :].decode("utf-8", "replace")
                return name, None, sep == b"-", rest.decode("utf-8", "replace")
    return None, None, False, body.decode("utf-8", "replace")
