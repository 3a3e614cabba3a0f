"""The Python API: the command line's ranking without the command line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rerank_cli.core import pipeline
from rerank_cli.core.documents import Document, Result
from rerank_cli.engines.interface import Stats
from rerank_cli.engines.registry import make_engine
from rerank_cli.redact import register_secret
from rerank_cli.settings import config_file as config
from rerank_cli.settings.resolution import resolve
from rerank_cli.terminal import Environment


def rerank(
    query: str,
    documents: Iterable[str],
    top_k: int | None = None,
    min_score: float | None = None,
    **options: Any,
) -> list[Result]:
    """Rank ``documents`` for ``query``. ``options`` are settings named as in the config file
    (``model``, ``base_url``, ``api_key``, ``engine``, ``profile``, ``instruction``,
    ``batch_size`` …), resolved like the CLI's: the score cache and long-document handling
    apply. Warnings go to stderr; nothing else is printed."""
    from rerank_cli.jobs.execution import JobOptions, cached, plan_work, score

    env = Environment.from_system()
    env.stderr_isatty = False  # a library shows no progress bar
    settings = resolve(options, env.env, config.load(config.config_path(env.env)))
    register_secret(settings.api_key)
    job = JobOptions(settings=settings, filters=pipeline.Filters(top_k=top_k, min_score=min_score))
    docs = [Document(text=text, raw=text.encode("utf-8", "surrogateescape")) for text in documents]
    for index, doc in enumerate(docs):
        doc.index = index
    stats = Stats(documents=len(docs))
    work = plan_work(env, query, docs, job)
    with cached(env, make_engine(settings, stats), settings, stats) as engine:
        results = score(env, query, work, engine, stats, job)
    return pipeline.rank(results, job.filters)
