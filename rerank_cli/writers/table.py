"""The terminal table (rich): rank, score, one line of text cut to the width, source."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO

from rerank_cli.documents import Result
from rerank_cli.writers.base import WriteOptions


def one_line(text: str) -> str:
    return " ".join(text.split())


def write_table(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    show_source = any(r.document.source is not None for r in results)
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("score", justify="right", style="cyan", no_wrap=True)
    table.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1)
    if show_source:
        table.add_column("source", style="green", no_wrap=True, overflow="ellipsis", max_width=40)
    for result in results:
        row: list[str | Text] = [
            str(result.rank),
            f"{result.score:.4f}",
            Text(one_line(result.document.text)),
        ]
        if show_source:
            source = result.document.source
            row.append(str(source) if source is not None else "")
        table.add_row(*row)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=options.width,
        force_terminal=options.color,
        color_system="standard" if options.color else None,
        no_color=not options.color,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    out.write(buffer.getvalue().encode("utf-8"))
