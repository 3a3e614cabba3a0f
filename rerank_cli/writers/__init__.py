"""Writers turn ranked results into bytes: pure functions over an output stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO

from rerank_cli.core.documents import Result
from rerank_cli.writers.common import WriteOptions

__all__ = ["FORMATS", "WriteOptions", "write"]

Writer = Callable[[Sequence[Result], IO[bytes], WriteOptions], None]


def _table(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
    from rerank_cli.writers.table import write_table  # rich loads only for a table

    write_table(results, out, options)


def _lazy(name: str) -> Writer:
    def writer(results: Sequence[Result], out: IO[bytes], options: WriteOptions) -> None:
        from rerank_cli.writers import text

        getattr(text, name)(results, out, options)

    return writer


FORMATS: dict[str, Writer] = {
    "table": _table,
    "jsonl": _lazy("write_jsonl"),
    "json": _lazy("write_json"),
    "plain": _lazy("write_plain"),
    "tsv": _lazy("write_tsv"),
}


def write(results: Sequence[Result], fmt: str, out: IO[bytes], options: WriteOptions) -> None:
    FORMATS[fmt](results, out, options)
    out.flush()
