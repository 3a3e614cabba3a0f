"""The Python API: the command line's ranking without the command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any

from rerank_cli import config, pipeline
from rerank_cli.documents import Document, Result
from rerank_cli.engines.base import Engine, Stats
from rerank_cli.settings import Settings, check_transport_security, resolve


def check_engine(settings: Settings) -> None:
    """Fail now, before any input is read, if the engine cannot run: no key, or a key that
    would travel in clear text."""
    if settings.engine == "lexical":
        return
    from rerank_cli.errors import ApiRefused

    if not settings.api_key:
        raise ApiRefused(
            "no API key — set GR_KEY (or RERANK_API_KEY), run: rerank config set api_key …, "
            "or rank offline with --engine lexical"
        )
    check_transport_security(settings)


def make_engine(settings: Settings, stats: Stats, **kwargs: Any) -> Engine:
    """The engine the settings name; keyword arguments go to the API engine (transport …)."""
    check_engine(settings)
    if settings.engine == "lexical":
        from rerank_cli.engines.lexical import LexicalEngine

        return LexicalEngine(stats)
    from rerank_cli.engines.api import ApiEngine

    return ApiEngine(settings, stats, **kwargs)


def rerank(
    query: str,
    documents: Iterable[str],
    top_k: int | None = None,
    min_score: float | None = None,
    **options: Any,
) -> list[Result]:
    """Rank ``documents`` for ``query``; options are settings (``model``, ``base_url``,
    ``api_key``, ``engine``, ``batch_size`` …), resolved like the CLI's."""
    env = dict(os.environ)
    settings = resolve(options, env, config.load(config.config_path(env)))
    docs = [Document(text=text, raw=text.encode()) for text in documents]
    for index, doc in enumerate(docs):
        doc.index = index
    stats = Stats(documents=len(docs))
    engine = make_engine(settings, stats)
    results = asyncio.run(pipeline.score_documents(query, docs, engine, stats))
    return pipeline.rank(results, pipeline.Filters(top_k=top_k, min_score=min_score))
