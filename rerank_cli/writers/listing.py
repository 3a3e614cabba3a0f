"""Listings (``rerank profiles``, ``rerank tasks``): named columns as a table, JSON or TSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import orjson

from rerank_cli.writers.common import WriteOptions, render


def write_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    out: IO[bytes],
    options: WriteOptions,
) -> None:
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if fmt == "json":
        out.write(orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "jsonl":
        out.write(b"".join(orjson.dumps(record) + b"\n" for record in records))
    elif fmt == "table":
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:  # Text: a value's brackets ([profiles.vllm]) are not markup
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        render(table, out, options)
    else:  # plain, tsv
        lines = ("\t".join("" if cell is None else str(cell) for cell in row) for row in rows)
        out.write("".join(line + "\n" for line in lines).encode())
