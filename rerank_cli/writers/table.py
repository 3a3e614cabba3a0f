"""The terminal table (rich): rank, score, one line of text cut to the width, source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from rerank_cli.core.documents import Result
from rerank_cli.writers.common import WriteOptions, render

PADDING = 2  # rich's default horizontal padding between columns, box=None
MAX_SOURCE = 40


def cut_left(text: str, width: int) -> str:
    """Keep the end of a path: ``…/deep/file.py:12`` tells more than ``src/very/deep/fi…``."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def one_line(text: str) -> str:
    return " ".join(text.split())


def write_table(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    from rich.table import Table
    from rich.text import Text

    sources = [cut_left(str(r.document.source or ""), MAX_SOURCE) for r in results]
    show_source = any(sources)
    # Rank, score and source keep their width; the text gets the rest. (Rich shrinks every
    # column when the text is long, so the widths are settled here.)
    rank_width = max(1, len(str(max((r.rank for r in results), default=1))))
    score_width = max(5, *(len(f"{r.score:.4f}") for r in results)) if results else 6
    source_width = min(MAX_SOURCE, max(6, *(len(s) for s in sources))) if show_source else 0
    fixed = rank_width + score_width + source_width + PADDING * (3 if show_source else 2)
    text_width = max(10, options.width - fixed - 1)

    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("#", justify="right", style="dim", no_wrap=True, width=rank_width)
    table.add_column("score", justify="right", style="cyan", no_wrap=True, width=score_width)
    table.add_column("text", no_wrap=True, overflow="ellipsis", max_width=text_width)
    if show_source:
        table.add_column(
            "source", style="green", no_wrap=True, overflow="ellipsis", width=source_width
        )
    for result, source in zip(results, sources, strict=True):
        row: list[str | Text] = [str(result.rank), f"{result.score:.4f}"]
        row.append(Text(one_line(result.document.text)))
        if show_source:
            row.append(source)
        table.add_row(*row)
    render(table, out, options)
