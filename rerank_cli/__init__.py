"""rerank: rank documents by relevance to a query with any /v1/rerank API.

The Python API mirrors the command line::

    from rerank_cli import rerank
    results = rerank("capital of France", ["Paris is the capital.", "Bananas are yellow."])
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: `rerank --version` should import next to nothing
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from rerank_cli.core.documents import Result

__all__ = ["__version__", "rerank"]


def rerank(query: str, documents: Iterable[str], **settings: Any) -> list[Result]:
    """Rank ``documents`` against ``query``; ``settings`` are the CLI's long option names."""
    from rerank_cli.session import rerank as _rerank

    return _rerank(query, documents, **settings)
