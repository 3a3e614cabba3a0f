"""Keep secrets out of everything printed: every key in use is registered, and every message
leaving the process passes through :func:`redact`."""

from __future__ import annotations

_secrets: set[str] = set()

# Short strings would redact ordinary words; real keys are long.
_MIN_SECRET_LEN = 6


def register_secret(secret: str | None) -> None:
    if secret and len(secret) >= _MIN_SECRET_LEN:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


def mask(secret: str) -> str:
    """``gr-…abcd``: enough to tell keys apart, too little to use one."""
    if len(secret) < 12:
        return "…"
    prefix = secret[:3] if secret[2:3] in "-_" else ""
    return f"{prefix}…{secret[-4:]}"
