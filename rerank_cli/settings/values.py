"""How a value given as text (environment, ``rerank config set``), as TOML or as a Python value
becomes a typed one — the one place for every setting and every ``[profiles.NAME]`` field.

A parser returns the typed value or raises :class:`Invalid` saying what it expected; the caller
names the source (``--batch-size``, ``$RERANK_BATCH_SIZE``, ``config.toml: batch_size`` …) with
:func:`problem`. Imports nothing of the package, so that ``providers`` may use it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

Parser = Callable[[Any], Any]

TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


class Invalid(ValueError):
    """A value a parser refuses; ``str()`` is what was expected ("a whole number ≥ 1")."""


def problem(who: str, expected: str, value: Any, *, secret: bool = False) -> str:
    """``batch_size must be a whole number ≥ 1, got 'abc'`` (a secret is never shown)."""
    return f"{who} must be {expected}, got {'…' if secret else repr(value)}"


def boolean(value: Any) -> bool:
    """TOML and Python booleans; yes/no, on/off, true/false, 1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Invalid("true or false (yes/no, on/off, 1/0)")


def _bound(minimum: float | None) -> str:
    return "" if minimum is None else f" ≥ {minimum:g}"


def whole(minimum: int | None = None) -> Parser:
    """An integer (a string of one, or a TOML/Python int — not a bool, not 2.5) ≥ ``minimum``."""
    expected = "a whole number" + _bound(minimum)

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(expected)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise Invalid(expected) from None
        else:
            raise Invalid(expected)
        if minimum is not None and number < minimum:
            raise Invalid(expected)
        return number

    return parse


def number(minimum: float | None = None) -> Parser:
    """A finite number (never nan or inf) ≥ ``minimum``."""
    expected = "a finite number" + _bound(minimum)

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Invalid(expected)
        try:
            result = float(value.strip() if isinstance(value, str) else value)
        except ValueError:
            raise Invalid(expected) from None
        if not math.isfinite(result) or (minimum is not None and result < minimum):
            raise Invalid(expected)
        return result

    return parse


def choice(allowed: Sequence[str], *, empty: bool = False) -> Parser:
    """One of ``allowed``; with ``empty``, ``""`` too, meaning none (→ None)."""
    expected = "one of " + ", ".join(allowed) + (", or empty" if empty else "")

    def parse(value: Any) -> str | None:
        if empty and value == "":
            return None
        if not isinstance(value, str) or value not in allowed:
            raise Invalid(expected)
        return value

    return parse


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise Invalid("a non-empty string")
    return value


def any_text(value: Any) -> str:
    """A string, maybe empty."""
    if not isinstance(value, str):
        raise Invalid("a string")
    return value


def url_problem(value: str) -> str | None:
    """Why ``value`` is not a usable http(s) base URL, or None when it is."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError:
        return "an http:// or https:// URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return "an http:// or https:// URL"
    return None


def url(value: Any) -> str:
    """An http:// or https:// URL with a host (and a valid port, if any)."""
    if not isinstance(value, str) or not value:
        raise Invalid("an http:// or https:// URL")
    expected = url_problem(value)
    if expected:
        raise Invalid(expected)
    return value
