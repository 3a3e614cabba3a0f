"""Which engine a run uses, and whether it can run at all (a key, sent safely)."""

from __future__ import annotations

from typing import Any

from rerank_cli.engines.interface import Engine, Stats
from rerank_cli.settings.resolution import Settings, check_transport_security


def key_hint(settings: Settings) -> str:
    """Where a key for this profile can come from, for messages."""
    from rerank_cli.providers.profile import DEFAULT_PROFILE

    variables = settings.profile.key_env or ("RERANK_API_KEY",)
    hint = f"set {variables[0]}" + (f" (or {', '.join(variables[1:])})" if variables[1:] else "")
    if settings.profile.name == DEFAULT_PROFILE:
        hint += ", run: rerank config set api_key …"
    return hint + ", or pass --api-key"


def check_engine(settings: Settings, require_key: bool = True) -> None:
    """Fail now, before any input is read, if the engine cannot run: no key, or a key that
    would travel in clear text."""
    if settings.engine == "lexical":
        return
    from rerank_cli.errors import ApiRefused

    if require_key and not settings.api_key and settings.profile.key_required:
        raise ApiRefused(
            f"no API key — {key_hint(settings)}, or rank offline with --engine lexical"
        )
    check_transport_security(settings)


def make_engine(
    settings: Settings, stats: Stats, require_key: bool = True, **kwargs: Any
) -> Engine:
    """The engine the settings name; keyword arguments go to the API engine (transport …)."""
    check_engine(settings, require_key)
    if settings.engine == "lexical":
        from rerank_cli.engines.lexical import LexicalEngine

        return LexicalEngine(stats)
    from rerank_cli.engines.api.api_engine import ApiEngine

    return ApiEngine(settings, stats, **kwargs)
