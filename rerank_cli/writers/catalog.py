"""Output of ``rerank models`` and ``rerank account``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import orjson

from rerank_cli.providers.pricing import ModelInfo
from rerank_cli.writers.common import WriteOptions, render


def _model_record(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "kind": info.kind,
        "price": info.price,
        "unit": info.unit,
        "usd_per_1k_documents": info.per_1k_documents,
    }


def write_models(
    models: Sequence[ModelInfo], fmt: str, out: IO[bytes], options: WriteOptions
) -> None:
    if fmt == "json":
        out.write(orjson.dumps([_model_record(m) for m in models], option=orjson.OPT_INDENT_2))
        out.write(b"\n")
    elif fmt == "jsonl":
        out.write(b"".join(orjson.dumps(_model_record(m)) + b"\n" for m in models))
    elif fmt == "table":
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("id", "kind", "price", "unit"):
            table.add_column(name, no_wrap=True, justify="right" if name == "price" else "left")
        for m in models:
            price = "—" if m.price is None else f"${m.price:g}"
            table.add_row(m.id, m.kind, price, m.unit)
        render(table, out, options)
    else:  # plain, tsv: one model a line
        lines = (
            f"{m.id}\t{m.kind}\t{'' if m.price is None else m.price}\t{m.unit}\n" for m in models
        )
        out.write("".join(lines).encode())


def write_account(payload: Any, fmt: str, out: IO[bytes]) -> None:
    """The balance; anything the server echoes back passes the redaction (it was sent the key
    in the URL)."""
    from rerank_cli.redact import redact

    if fmt in ("json", "jsonl") or not isinstance(payload, dict):
        out.write(redact(orjson.dumps(payload).decode()).encode() + b"\n")
        return
    balance = payload.get("balance")
    currency = payload.get("currency", "USD")
    shown = f"{balance:,.6g}" if isinstance(balance, (int, float)) else str(balance)
    rest = ", ".join(f"{k}: {v}" for k, v in payload.items() if k not in ("balance", "currency"))
    out.write(redact(f"balance: {shown} {currency}{'; ' + rest if rest else ''}\n").encode())
