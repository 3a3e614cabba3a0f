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
    from rerank_cli.settings.schema import Settings


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
