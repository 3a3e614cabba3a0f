"""The engine interface, and the run statistics every engine adds to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

# Called with (positions in the texts given to score, their scores) as each batch completes.
ScoreCallback = Callable[[Sequence[int], Sequence[float]], None]


@dataclass
class Stats:
    documents: int = 0  # records read
    skipped: int = 0  # invalid records skipped (--skip-invalid)
    texts: int = 0  # texts to score (chunks included)
    unique: int = 0  # distinct texts
    cache_hits: int = 0  # distinct texts answered by the score cache
    cache_misses: int = 0  # distinct texts the score cache did not answer (refresh: all)
    sent: int = 0  # texts sent to the engine (billed, for a hosted API)
    batches: int = 0
    requests: int = 0  # HTTP requests made, retries included
    retries: int = 0
    bytes_sent: int = 0
    elapsed: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Engine(Protocol):
    name: str

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        """One score per text, in order; higher is more relevant."""
        ...

    def requests(self, query: str, texts: Sequence[str]) -> int:
        """How many requests scoring ``texts`` would take (what --dry-run reports)."""
        ...
