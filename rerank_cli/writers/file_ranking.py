"""Output of ``rerank files``: one result per file, shown with its best chunk.

A file's path is kept as the operating system gave it (``os.fsdecode``); ``plain`` writes its
bytes back exactly (for ``xargs -0``), the text formats show undecodable bytes as U+FFFD.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import IO, Any

import orjson

from rerank_cli.core.documents import Result
from rerank_cli.writers.common import UNSCORED, WriteOptions, render
from rerank_cli.writers.text import escape_tsv

FORMATS = ("table", "plain", "jsonl", "json", "tsv")


def path_of(result: Result) -> str:
    source = result.document.source
    return source.file if source is not None else ""


def path_text(path: str) -> str:
    """The path as valid UTF-8 text: undecodable bytes in a name become U+FFFD."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def best_text(result: Result) -> str:
    chunk = result.chunk
    text = result.document.text
    return text if chunk is None else text[chunk.start_char : chunk.end_char]


def line_range(result: Result) -> tuple[int | None, int | None]:
    chunk = result.chunk
    return (None, None) if chunk is None else (chunk.start_line, chunk.end_line)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _words(line: str) -> set[str]:
    """A line's words as the lexical engine sees them (lower case, common words dropped,
    endings stripped), with ``camelCase`` and ``snake_case`` names split into theirs."""
    from rerank_cli.engines.lexical import tokenize

    return set(tokenize(_CAMEL.sub(" ", line)))


def _same_word(term: str, word: str) -> bool:
    """``config`` meets ``configured``: one a prefix of the other, the shorter of 4+ letters."""
    if term == word:
        return True
    short, long = sorted((term, word), key=len)
    return len(short) >= 4 and long.startswith(short)


def telling_line(text: str, query: str) -> str:
    """The best chunk's most telling line, stripped, for the table: the line that shares the
    most words with the query (words rarer in the chunk break a tie, then the earlier line
    wins); if none shares a word, the longest line with letters in it (not a lone ``)`` or
    ``{``); else the first non-blank line."""
    lines = [stripped for line in text.splitlines() if (stripped := line.strip())]
    if not lines:
        return ""
    terms = _words(query)
    if terms:
        shared = [
            {term for term in terms if any(_same_word(term, word) for word in words)}
            for words in map(_words, lines)
        ]
        spread = Counter(term for found in shared for term in found)
        best = max(
            range(len(lines)),
            key=lambda i: (len(shared[i]), sum(1 / spread[term] for term in shared[i]), -i),
        )
        if shared[best]:
            return lines[best]
    worded = [line for line in lines if any(char.isalpha() for char in line)]
    return max(worded, key=len) if worded else lines[0]


def record(result: Result) -> dict[str, Any]:
    """A file a failed run did not finish scoring (--partial) has ``null`` rank, score and
    best chunk, and ``"unscored": true`` last."""
    if not result.scored:
        path = path_text(path_of(result))
        return {"rank": None, "score": None, "path": path, "best": None, "unscored": True}
    start, end = line_range(result)
    return {
        "rank": result.rank,
        "score": result.score,
        "path": path_text(path_of(result)),
        "best": {"start_line": start, "end_line": end, "text": best_text(result)},
        "chunks": result.chunks_scored,
    }


def write_jsonl(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    out.write(b"".join(orjson.dumps(record(r)) + b"\n" for r in results))


def write_json(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    out.write(orjson.dumps([record(r) for r in results], option=orjson.OPT_INDENT_2) + b"\n")


def write_plain(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    """Paths only, one per line or NUL-terminated (``-0``), as their bytes on disk."""
    end = b"\0" if options.null else b"\n"
    out.write(b"".join(os.fsencode(path_of(r)) + end for r in results))


def write_tsv(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    """``score<TAB>path<TAB>start_line<TAB>end_line``."""
    lines = []
    for r in results:
        start, end = line_range(r)
        path = escape_tsv(path_text(path_of(r)))
        score = f"{r.score:.4f}" if r.scored else ""  # --partial: not scored
        lines.append(f"{score}\t{path}\t{start or ''}\t{end or ''}\n")
    out.write("".join(lines).encode("utf-8"))


def lines_label(result: Result) -> str:
    start, end = line_range(result)
    if start is None:
        return ""
    return str(start) if start == end else f"{start}-{end}"


def shorten_left(path: str, width: int) -> str:
    """Cut a long path on the left: its file name is what tells files apart."""
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def _widths(rows: Sequence[tuple[str, str, str, str, str]], width: int) -> tuple[int, int]:
    """Widths of the path and best-chunk columns: rich, left to fit columns of fixed content
    and a ratio column, may drop whole columns on a narrow terminal; explicit widths don't."""
    headers = ("#", "score", "path", "lines", "best chunk")
    fixed = sum(max(len(headers[i]), *(len(row[i]) for row in rows)) for i in (0, 1, 3))
    available = max(width - fixed - 2 * (len(headers) - 1), 2)
    longest_path = max(len(headers[2]), *(len(row[2]) for row in rows))
    path = max(min(longest_path, available // 2), 1)
    return path, max(available - path, 1)


def write_table(
    results: Sequence[Result], out: IO[bytes], options: WriteOptions, query: str = ""
) -> None:
    from rich.table import Table
    from rich.text import Text

    rows = [
        (
            str(result.rank),
            f"{result.score:.4f}",
            path_text(path_of(result)),
            lines_label(result),
            telling_line(best_text(result), query),
        )
        if result.scored
        else ("", UNSCORED, path_text(path_of(result)), "", "")  # --partial: not scored
        for result in results
    ]
    path_width, chunk_width = _widths(rows, options.width)
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("score", justify="right", style="cyan", no_wrap=True)
    table.add_column("path", style="green", no_wrap=True, overflow="ellipsis", width=path_width)
    table.add_column("lines", justify="right", style="dim", no_wrap=True)
    table.add_column("best chunk", no_wrap=True, overflow="ellipsis", width=chunk_width)
    for rank, score, path, lines, line in rows:
        table.add_row(rank, score, Text(shorten_left(path, path_width)), lines, Text(line))
    render(table, out, options)


_WRITERS: dict[str, Callable[[Sequence[Result], IO[bytes], WriteOptions], None]] = {
    "table": write_table,
    "plain": write_plain,
    "jsonl": write_jsonl,
    "json": write_json,
    "tsv": write_tsv,
}


def write(
    results: Sequence[Result], fmt: str, out: IO[bytes], options: WriteOptions, query: str = ""
) -> None:
    """Write ``results`` in ``fmt``; the table shows each best chunk's line most telling of
    ``query``."""
    if fmt == "table":
        write_table(results, out, options, query)
    else:
        _WRITERS[fmt](results, out, options)
    out.flush()
