"""Counting in messages the way a person writes it: ``1 request``, ``2 requests``, ``1,200
documents``."""

from __future__ import annotations

_IRREGULAR = {"retry": "retries", "query": "queries", "entry": "entries"}


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun if count == 1 else _IRREGULAR.get(noun, noun + 's')}"
