"""The engine interface, and the run statistics every engine adds to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, cast

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


class TextFeed:
    """Texts to score that may still be arriving: ``texts[:available]`` are ready, more come
    until :meth:`close`. Lives on the event loop: another thread appends to ``texts`` and calls
    :meth:`advance` and :meth:`close` through ``loop.call_soon_threadsafe``."""

    def __init__(self, texts: Sequence[str] | None = None, *, closed: bool = False) -> None:
        self.texts: Sequence[str] = [] if texts is None else texts
        self.available = len(self.texts)
        self.closed = closed
        self._listeners: list[Callable[[], None]] = []

    def advance(self, available: int) -> None:
        """``texts[:available]`` are ready now."""
        if available > self.available:
            self.available = available
            self._tell()

    def close(self) -> None:
        """No more texts will come: every one is ready."""
        self.available = len(self.texts)
        self.closed = True
        self._tell()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the loop) whenever texts become ready or the feed closes."""
        self._listeners.append(listener)

    def _tell(self) -> None:
        for listener in self._listeners:
            listener()


class StreamingEngine(Engine, Protocol):
    """An engine that scores texts as they arrive: scores (one per text, by position) grow
    as the feed does; the result holds one per text once the feed has closed."""

    async def score_feed(
        self, query: str, feed: TextFeed, on_scores: ScoreCallback | None = None
    ) -> Sequence[float]: ...


def streaming(engine: Engine) -> StreamingEngine:
    """``engine`` as one that scores texts as they arrive; a TypeError if it cannot."""
    if not callable(getattr(engine, "score_feed", None)):
        raise TypeError(f"the {engine.name} engine cannot score texts as they arrive")
    return cast("StreamingEngine", engine)


def can_stream(engine: Engine) -> bool:
    return callable(getattr(engine, "score_feed", None))
