"""Adaptive concurrency for one session's requests: how many may be in flight, and when none
may be sent at all.

- The limit starts at ``-j`` and follows AIMD, as TCP's congestion window does: a 429 halves it
  (once per round: the answers to requests sent before the last cut do not cut again), each
  success adds ``1/limit`` (one more per round of successes); never above ``-j``, never below 1.
- A pause: the server said when to come back (``Retry-After``, ``retry-after-ms``, the body's
  ``retry_after_s`` on a 429 or 503; a rate limit with nothing remaining, and its reset time).
  Until then no request of the session is sent; a retry's own wait serves it.
- A count: ``x-ratelimit-remaining(-requests)`` says how many requests are left; once the
  requests started since have used them up, the session pauses until that count's reset.

:class:`Window` is the pure state (no clock, no loop: property-tested); :class:`Pacer` is its
gate on the session's event loop; :func:`read_rate_limits` reads the providers' headers.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

DECREASE = 0.5  # a 429 multiplies the limit by this


@dataclass
class Window:
    """The limit on requests in flight and the session's pause, as pure state.

    Each request takes a ticket when it starts (:meth:`start`); its outcome comes back with the
    ticket, so that the 429s of one round (sent under the old limit) cut the limit once."""

    ceiling: int  # -j
    limit: float = 0.0  # 0: the ceiling
    decrease: float = DECREASE
    issued: int = 0  # tickets handed out
    cut_at: int = 0  # the first ticket issued after the last cut
    paused_until: float = -math.inf  # on the caller's clock
    pause_id: int = 0  # changes whenever the pause is extended
    # The server's count of requests left (x-ratelimit-remaining-requests), as of the latest
    # ticket it was reported for, and when that count resets (None: no count known).
    budget_ticket: int = -1
    budget_left: float = 0.0
    budget_reset: float | None = None

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = float(self.ceiling) if self.limit <= 0 else self.clamp(self.limit)

    def clamp(self, value: float) -> float:
        return min(float(self.ceiling), max(1.0, value))

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(1, min(self.ceiling, math.floor(self.limit)))

    def start(self) -> int:
        """A request is sent: its ticket."""
        ticket = self.issued
        self.issued += 1
        self._spend()
        return ticket

    def counted(self, ticket: int, remaining: float, reset_at: float | None) -> None:
        """The server counted request ``ticket``: ``remaining`` requests are left until
        ``reset_at``. The latest ticket's count wins (answers come back out of order)."""
        if ticket < self.budget_ticket:
            return
        self.budget_ticket, self.budget_left, self.budget_reset = ticket, remaining, reset_at
        self._spend()

    def _spend(self) -> None:
        """Once the requests started since the count have used it up, pause until it resets
        (the count is then spent: the next answer brings a new one)."""
        if self.budget_reset is None:
            return
        started_since = self.issued - self.budget_ticket - 1
        if self.budget_left - started_since <= 0:
            self.pause_until(self.budget_reset)
            self.budget_reset = None

    def succeeded(self, ticket: int) -> None:
        """Additive increase: a full round of successes raises the limit by one."""
        self.limit = self.clamp(self.limit + 1.0 / self.limit)

    def throttled(self, ticket: int) -> None:
        """Multiplicative decrease, once per round: a 429 for a request sent before the last
        cut says nothing new about the limit now."""
        if ticket >= self.cut_at:
            self.limit = self.clamp(self.limit * self.decrease)
            self.cut_at = self.issued

    def pause(self, now: float, seconds: float) -> None:
        """Send nothing before ``now + seconds`` (a longer pause already set stays)."""
        self.pause_until(now + max(0.0, seconds))

    def pause_until(self, until: float) -> None:
        if until > self.paused_until:
            self.paused_until = until
            self.pause_id += 1

    def waiting(self, now: float) -> float:
        """Seconds left of the pause (0: none)."""
        return max(0.0, self.paused_until - now)

    def served(self, pause_id: int) -> None:
        """Someone slept through pause ``pause_id``: it is over, unless extended since."""
        if pause_id == self.pause_id:
            self.paused_until = -math.inf


Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """The gate every request of a session passes (:meth:`acquire` … :meth:`release`), on the
    session's event loop. Waits go through the client's ``sleep``; a pause is over once a waiter
    has slept through it, so an injected sleep that returns at once (tests) never spins."""

    def __init__(
        self, ceiling: int, sleep: Sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = Window(ceiling)
        self.in_flight = 0
        self._sleep = sleep
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()  # FIFO: first come, first sent
        self._sent: dict[int, float] = {}  # ticket → when it was sent

    async def acquire(self) -> int:
        """Wait for the pause to end and a place under the limit; the request's ticket."""
        import asyncio

        while True:
            await self.wait_out_pause()
            if self.in_flight < self.window.allowed:
                break
            turn = asyncio.get_running_loop().create_future()
            self._waiters.append(turn)
            try:
                await turn
            except BaseException:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                else:  # woken, then cancelled: the place it was woken for goes to the next
                    self._wake()
                raise
        self.in_flight += 1
        self._wake()  # the limit may have room for more than one
        ticket = self.window.start()
        self._sent[ticket] = self._clock()
        return ticket

    async def wait_out_pause(self, at_least: float | None = None) -> None:
        """Sleep until the session's pause is over; given ``at_least`` (a retry's own wait),
        sleep that long in any case (a pause it outlasts counts as served)."""
        wait = self.window.waiting(self._clock())
        once = at_least is not None
        if at_least is not None:
            wait = max(wait, at_least)
        while wait > 0 or once:
            once = False
            pause_id = self.window.pause_id
            await self._sleep(wait)
            self.window.served(pause_id)
            wait = self.window.waiting(self._clock())

    def release(self, ticket: int, status: int | None, limits: RateLimits | None = None) -> None:
        """The request's outcome: a 2xx status raises the limit, 429 cuts it; anything else
        (another error, the network) leaves it. ``limits``: its rate-limit headers (read with
        :meth:`elapsed`)."""
        self.in_flight -= 1
        self._sent.pop(ticket, None)
        if limits is not None:
            now = self._clock()
            if limits.remaining is not None:
                reset_at = None if limits.reset is None else now + limits.reset
                self.window.counted(ticket, limits.remaining, reset_at)
            if limits.exhausted is not None:
                self.window.pause_until(now + limits.exhausted)
        if status is not None and 200 <= status < 300:
            self.window.succeeded(ticket)
        elif status == 429:
            self.window.throttled(ticket)
        self._wake()

    def elapsed(self, ticket: int) -> float:
        """Seconds since request ``ticket`` was sent: a reset given in seconds counts from then
        (the server counted the request when it arrived, and its answer may take the server's
        whole latency to come back)."""
        sent = self._sent.get(ticket)
        return 0.0 if sent is None else max(0.0, self._clock() - sent)

    def waiting(self) -> float:
        """Seconds left of the session's pause (0: none)."""
        return self.window.waiting(self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every request of the session for ``seconds`` from now."""
        self.window.pause(self._clock(), seconds)

    def _wake(self) -> None:
        """Wake the first waiter if there is a place for it (it wakes the next, and so on)."""
        while self._waiters and self.in_flight < self.window.allowed:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return


# --- what the providers' headers say -----------------------------------------------------------

# OpenAI and most others: x-ratelimit-remaining-requests / -tokens; many: x-ratelimit-remaining;
# Cohere and the IETF drafts: ratelimit-remaining(-requests).
_PREFIXES = ("x-ratelimit-", "ratelimit-", "x-rate-limit-")
_KINDS = ("", "-requests", "-tokens")
# OpenAI's durations: "1s", "6m0s", "20ms", "1h2m3.5s".
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
    r"(?:(\d+(?:\.\d+)?)ms)?"
)
_EPOCH = 1e9  # a plain number this large is a Unix time, not seconds to wait
_EPOCH_MS = 1e12


def reset_seconds(value: str, now: float | None = None, elapsed: float = 0.0) -> float | None:
    """Seconds from now until a rate-limit reset written as a provider writes it: seconds to
    wait (``1.5``) or a duration (``6m0s``, ``20ms``), counted from ``elapsed`` seconds ago (when
    the request was sent: the server counted it on arrival); or a point in time: a Unix time in
    seconds or milliseconds, an HTTP date, an ISO 8601 time (``now``: the wall clock's time).
    None if it is none of these."""
    text = value.strip()
    if not text:
        return None
    wall = time.time() if now is None else now
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        if number >= _EPOCH_MS:
            return max(0.0, number / 1000.0 - wall)
        if number >= _EPOCH:
            return max(0.0, number - wall)
        return max(0.0, number - elapsed)
    match = _DURATION.fullmatch(text)
    if match and any(match.groups()):
        hours, minutes, seconds, millis = (float(part) if part else 0.0 for part in match.groups())
        return max(0.0, hours * 3600 + minutes * 60 + seconds + millis / 1000 - elapsed)
    import email.utils  # dates are rare: loaded when one comes
    from datetime import datetime

    when: datetime | None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall)


@dataclass(frozen=True)
class RateLimits:
    """What an answer's rate-limit headers say (None: not said)."""

    remaining: float | None = None  # requests left: x-ratelimit-remaining(-requests)
    reset: float | None = None  # seconds from now until that count resets
    exhausted: float | None = None  # the longest reset among limits with nothing left


def read_rate_limits(
    headers: Mapping[str, str],
    cap: float = math.inf,
    now: float | None = None,
    elapsed: float = 0.0,
) -> RateLimits:
    """The rate-limit headers of an answer to a request sent ``elapsed`` seconds ago, under
    any of the usual prefixes; resets in seconds from now (see :func:`reset_seconds`), capped
    at ``cap``."""
    remaining: float | None = None
    reset: float | None = None
    exhausted: float | None = None
    for prefix in _PREFIXES:
        for kind in _KINDS:
            left = _number(headers.get(f"{prefix}remaining{kind}"))
            if left is None:
                continue
            text = headers.get(f"{prefix}reset{kind}")
            seconds = None if text is None else reset_seconds(text, now, elapsed)
            seconds = None if seconds is None else min(seconds, cap)
            if kind != "-tokens" and remaining is None:
                remaining, reset = left, seconds
            if left <= 0 and seconds is not None:
                exhausted = seconds if exhausted is None else max(exhausted, seconds)
    return RateLimits(remaining, reset, exhausted)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
