"""Split texts into request-sized batches: a batch closes at the document count, the byte
budget or the token budget, whichever comes first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rerank_cli.engines.api.protocol import document_cost


def plan_batches(
    texts: Sequence[str],
    batch_size: int,
    max_request_bytes: int,
    overhead: int = 0,
    cost: Callable[[str], int] = document_cost,
    tokens: Callable[[str], int] | None = None,
    max_request_tokens: int | None = None,
) -> list[list[int]]:
    """Positions of ``texts`` grouped into batches, in order. ``cost`` is a text's bytes in a
    request; ``tokens``, its share of a per-request token budget. A single text over a budget
    still gets a batch of its own: the server decides whether it is too large."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = overhead
    used = 0
    for position, text in enumerate(texts):
        weight = cost(text)
        count = tokens(text) if tokens is not None and max_request_tokens is not None else 0
        if current and (
            len(current) >= batch_size
            or size + weight > max_request_bytes
            or (max_request_tokens is not None and used + count > max_request_tokens)
        ):
            batches.append(current)
            current, size, used = [], overhead, 0
        current.append(position)
        size += weight
        used += count
    if current:
        batches.append(current)
    return batches
