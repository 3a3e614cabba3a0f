"""``rerank cache path|stats|clear``: the logic, with text for the CLI to print."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_cli.errors import UsageError
from rerank_cli.store.score_cache import LastRun, ScoreCache, cache_path


@dataclass
class CacheStats:
    path: str
    entries: int
    bytes: int
    oldest: float | None
    newest: float | None
    last_run: LastRun | None

    def as_dict(self) -> dict[str, Any]:
        last = self.last_run
        return {
            "path": self.path,
            "entries": self.entries,
            "bytes": self.bytes,
            "oldest": _iso(self.oldest),
            "newest": _iso(self.newest),
            "last_run": None
            if last is None
            else {"hits": last.hits, "misses": last.misses, "sent": last.sent, "at": _iso(last.at)},
        }

    def text(self) -> str:
        lines = [
            f"path:     {self.path}",
            f"entries:  {self.entries:,}",
            f"size:     {_size(self.bytes)}",
        ]
        if self.oldest is not None and self.newest is not None:
            lines.append(f"stored:   {_iso(self.oldest)} … {_iso(self.newest)}")
        last = self.last_run
        if last is None:
            lines.append("last run: not recorded")
        else:
            looked_up = last.hits + last.misses
            rate = f" ({last.hits / looked_up:.0%} hits)" if looked_up else ""
            lines.append(
                f"last run: {_count(last.hits, 'hit')}, {_count(last.misses, 'miss', 'misses')}"
                f"{rate}, {last.sent:,} scored and stored, at {_iso(last.at)}"
            )
        return "\n".join(lines) + "\n"


def stats(env: Mapping[str, str], warn: Callable[[str], None]) -> CacheStats:
    path = cache_path(env)
    if not path.exists():
        return CacheStats(str(path), 0, 0, None, None, None)
    with _open(path, warn) as cache:
        try:
            span = cache.oldest_and_newest()
            return CacheStats(
                str(path),
                cache.entries(),
                cache.size_on_disk(),
                span[0] if span else None,
                span[1] if span else None,
                cache.last_run(),
            )
        except sqlite3.Error as error:
            raise UsageError(f"cannot read the score cache {path}: {error}") from None


def clear(
    env: Mapping[str, str], warn: Callable[[str], None], older_than_days: float | None = None
) -> str:
    """Delete entries (all, or those older than the given days); the message to show."""
    if older_than_days is not None and not older_than_days >= 0:
        raise UsageError("--older-than must be 0 days or more")
    path = cache_path(env)
    if not path.exists():
        return f"the score cache is empty ({path} does not exist)"
    with _open(path, warn) as cache:
        try:
            deleted = cache.clear(older_than_days)
            left = cache.entries()
        except sqlite3.Error as error:
            raise UsageError(f"cannot clear the score cache {path}: {error}") from None
    which = "" if older_than_days is None else f" older than {_count(older_than_days, 'day')}"
    return f"deleted {_count(deleted, 'cached score')}{which}; {left:,} left"


def _count(number: float, one: str, many: str = "") -> str:
    """``1 day``, ``2 days``, ``1.5 days``, ``1,000 hits``."""
    shown = f"{number:,}" if isinstance(number, int) else f"{number:g}"
    return f"{shown} {one if number == 1 else many or one + 's'}"


def _open(path: Path, warn: Callable[[str], None]) -> ScoreCache:
    problems: list[str] = []
    cache = ScoreCache.open(path, problems.append)
    if cache is None:
        raise UsageError(problems[-1] if problems else f"cannot open the score cache {path}")
    for problem in problems:  # a corrupt file set aside: worth saying, not fatal
        warn(problem)
    return cache


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count:,} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({count:,} bytes)"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
