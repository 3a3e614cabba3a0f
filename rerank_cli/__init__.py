"""rerank: rank documents by relevance to a query with any /v1/rerank API.

The Python API is the command line's session::

    from rerank_cli import Reranker, rerank

    results = rerank("capital of France", ["Paris is the capital.", "Bananas are yellow."])
    with Reranker(profile="cohere", batch_size=32) as ranker:
        best = ranker.rank("refund policy", tickets, top_k=5, field="body")
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: `rerank --version` should import next to nothing
if TYPE_CHECKING:
    from rerank_cli.session import Reranker, rerank

__all__ = ["Reranker", "__version__", "rerank"]


def __getattr__(name: str) -> object:
    # The session (and what it imports) loads on first use, not with the package.
    if name in ("Reranker", "rerank"):
        from rerank_cli import session

        return getattr(session, name)
    raise AttributeError(f"module 'rerank_cli' has no attribute {name!r}")
