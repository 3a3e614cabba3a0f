"""The terminal table (rich): rank, score, one line of text cut to the width, source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from rerank_cli.core.documents import Result
from rerank_cli.writers.common import UNSCORED, WriteOptions, render

PADDING = 2  # rich's default horizontal padding between columns, box=None
MAX_SOURCE = 40
MAX_ID = 24


def cut_left(text: str, width: int) -> str:
    """Keep the end of a path: ``…/deep/file.py:12`` tells more than ``src/very/deep/fi…``."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def one_line(text: str) -> str:
    return " ".join(text.split())


def id_text(value: Any) -> str:
    """An ``--id-field`` value as shown: a string as it is, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return one_line(value)
    import orjson

    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:  # not JSON (the Python API takes any id)
        return one_line(str(value))


def write_table(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    from rich.table import Table
    from rich.text import Text

    sources = [cut_left(str(r.document.source or ""), MAX_SOURCE) for r in results]
    show_source = any(sources)
    ids = [id_text(r.document.id) for r in results]
    show_id = any(r.document.id is not None for r in results)
    # Rank, score, id and source keep their width; the text gets the rest. (Rich shrinks every
    # column when the text is long, so the widths are settled here.)
    ranks = [str(r.rank) if r.scored else "" for r in results]
    scores = [f"{r.score:.4f}" if r.scored else UNSCORED for r in results]
    rank_width = max(1, *map(len, ranks)) if results else 1
    score_width = max(5, *map(len, scores)) if results else 6
    source_width = min(MAX_SOURCE, max(6, *(len(s) for s in sources))) if show_source else 0
    # An id is cut before the text is squeezed: at most a third of what the others leave.
    id_room = max(4, (options.width - 30) // 3)
    id_width = min(MAX_ID, id_room, max(2, *(len(i) for i in ids))) if show_id else 0
    columns = 3 + show_source + show_id  # #, score, text, and the optional ones
    fixed = rank_width + score_width + source_width + id_width + PADDING * (columns - 1)
    text_width = max(10, options.width - fixed - 1)

    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("#", justify="right", style="dim", no_wrap=True, width=rank_width)
    table.add_column("score", justify="right", style="cyan", no_wrap=True, width=score_width)
    if show_id:
        table.add_column("id", style="yellow", no_wrap=True, overflow="ellipsis", width=id_width)
    table.add_column("text", no_wrap=True, overflow="ellipsis", max_width=text_width)
    if show_source:
        table.add_column(
            "source", style="green", no_wrap=True, overflow="ellipsis", width=source_width
        )
    for result, rank, score, source, doc_id in zip(
        results, ranks, scores, sources, ids, strict=True
    ):
        row: list[str | Text] = [rank, score]
        if show_id:
            row.append(Text(doc_id))
        row.append(Text(one_line(result.document.text)))
        if show_source:
            row.append(source)
        table.add_row(*row)
    render(table, out, options)
