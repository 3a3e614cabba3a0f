"""Split texts into request-sized batches: a batch closes at the document count or the byte
budget, whichever comes first."""

from __future__ import annotations

from collections.abc import Sequence

from rerank_cli.protocol import document_cost


def plan_batches(
    texts: Sequence[str], batch_size: int, max_request_bytes: int, overhead: int = 0
) -> list[list[int]]:
    """Positions of ``texts`` grouped into batches, in order. A single text larger than the
    budget still gets a batch of its own: the server decides whether it is too large."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = overhead
    for position, text in enumerate(texts):
        cost = document_cost(text)
        if current and (len(current) >= batch_size or size + cost > max_request_bytes):
            batches.append(current)
            current, size = [], overhead
        current.append(position)
        size += cost
    if current:
        batches.append(current)
    return batches
