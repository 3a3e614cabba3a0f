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


class Batcher:
    """:func:`plan_batches`, online: texts arrive a group at a time (:meth:`add`) and each
    batch is handed out as soon as it is closed — full, or the next text would not fit —
    so that the first request can leave while the input is still being read. The batches are
    exactly those :func:`plan_batches` makes of all the texts (a property test checks it).
    Without a token budget, a group whose longest text cannot make the byte budget bind
    (``cost_bound``) is cut by count alone, with no cost computed per text."""

    def __init__(
        self,
        batch_size: int,
        max_request_bytes: int,
        overhead: int = 0,
        cost: Callable[[str], int] = document_cost,
        cost_bound: Callable[[int], int] | None = None,
        tokens: Callable[[str], int] | None = None,
        max_request_tokens: int | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.max_request_bytes = max_request_bytes
        self.overhead = overhead
        self.cost = cost
        self.cost_bound = cost_bound
        self.tokens = tokens if max_request_tokens is not None else None
        self.max_request_tokens = max_request_tokens
        self.current: list[int] = []
        self._size: int | None = overhead  # bytes of the current batch; None: not counted
        self._used = 0  # its tokens
        self._longest = 0  # its longest text, in characters

    def add(self, texts: Sequence[str], start: int, end: int) -> list[Sequence[int]]:
        """Take ``texts[start:end]``; the batches closed by them (a batch of consecutive
        positions cut by count alone is a ``range``: a backlog of a million texts waiting to
        be sent costs no int object each)."""
        closed: list[Sequence[int]] = []
        if start >= end:
            return closed
        if self.tokens is None and self.cost_bound is not None:
            longest = max(self._longest, *map(len, texts[start:end]))
            if self.overhead + self.batch_size * self.cost_bound(longest) <= self.max_request_bytes:
                self._longest = longest
                self._size = None  # the byte budget cannot bind: count alone
                position = start
                while position < end:
                    take = min(self.batch_size - len(self.current), end - position)
                    if take == self.batch_size:  # a whole batch: a range, not a list of ints
                        closed.append(range(position, position + take))
                        position += take
                        continue
                    self.current.extend(range(position, position + take))
                    position += take
                    if len(self.current) >= self.batch_size:
                        closed.append(self.current)
                        self.current = []
                # The longest text of the batch left open is at most that of the group (and
                # of what was open before it).
                self._longest = longest if self.current else 0
                return closed
        if self._size is None:  # counted by count alone so far: count its bytes now
            self._size = self.overhead + sum(self.cost(texts[p]) for p in self.current)
        for position in range(start, end):
            text = texts[position]
            weight = self.cost(text)
            count = self.tokens(text) if self.tokens is not None else 0
            limit = self.max_request_tokens
            if self.current and (
                len(self.current) >= self.batch_size
                or self._size + weight > self.max_request_bytes
                or (limit is not None and self._used + count > limit)
            ):
                closed.append(self.current)
                self.current, self._size, self._used, self._longest = [], self.overhead, 0, 0
            self.current.append(position)
            self._size += weight
            self._used += count
            self._longest = max(self._longest, len(text))
            if len(self.current) >= self.batch_size:  # full: the next text would close it
                closed.append(self.current)
                self.current, self._size, self._used, self._longest = [], self.overhead, 0, 0
        return closed

    def close(self) -> list[Sequence[int]]:
        """The last batch, if any texts are left."""
        last, self.current = self.current, []
        return [last] if last else []
