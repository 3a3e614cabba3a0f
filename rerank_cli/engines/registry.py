"""The engines rerank knows, each with what it can do. The pipeline asks an engine's
capabilities — does it need a key, is it billed, may its scores be cached, does its model have a
token limit, does it send documents over the network — never its name.

Adding an engine is one module with a class that satisfies
:class:`~rerank_cli.engines.interface.Engine`, and one entry in :data:`ENGINES`. Engine modules
are imported only when an engine is built, so this registry costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rerank_cli.engines.interface import Engine, Stats
    from rerank_cli.settings.resolution import Settings


@dataclass(frozen=True)
class Capabilities:
    remote: bool  # documents leave the machine: an HTTP client, transport security, requests
    needs_key: bool  # an API key, unless the provider profile says the server takes none
    billed: bool  # each document sent costs money: prices, --max-cost
    cacheable: bool  # pointwise: a text's score does not depend on the other texts
    token_limited: bool  # the model reads a bounded context: long documents are windowed


@dataclass(frozen=True)
class EngineSpec:
    name: str
    summary: str
    capabilities: Capabilities
    factory: str  # "module:Class"; the class is built as Class(settings, stats, **parts)

    def build(self, settings: Settings, stats: Stats, **parts: Any) -> Engine:
        """The engine; ``parts`` are what the session lends it (the HTTP client, the shared
        request limit, a notice callback), each engine taking the ones it uses."""
        module, _, name = self.factory.partition(":")
        engine: Engine = getattr(importlib.import_module(module), name)(settings, stats, **parts)
        return engine


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="api",
            summary="the rerank API of the provider profile",
            capabilities=Capabilities(
                remote=True, needs_key=True, billed=True, cacheable=True, token_limited=True
            ),
            factory="rerank_cli.engines.api.api_engine:ApiEngine",
        ),
        EngineSpec(
            name="lexical",
            summary="offline BM25 over the given documents, no key needed",
            capabilities=Capabilities(
                remote=False, needs_key=False, billed=False, cacheable=False, token_limited=False
            ),
            factory="rerank_cli.engines.lexical:LexicalEngine",
        ),
    )
}


def spec_of(settings: Settings) -> EngineSpec:
    return ENGINES[settings.engine]


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
    capabilities = spec_of(settings).capabilities
    if (
        require_key
        and capabilities.needs_key
        and settings.profile.key_required
        and not settings.api_key
    ):
        from rerank_cli.errors import ApiRefused

        offline = [name for name, spec in ENGINES.items() if not spec.capabilities.needs_key]
        alternative = f", or rank offline with --engine {offline[0]}" if offline else ""
        raise ApiRefused(f"no API key — {key_hint(settings)}{alternative}")
    if capabilities.remote:
        from rerank_cli.settings.resolution import check_transport_security

        check_transport_security(settings)
