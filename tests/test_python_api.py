"""The Python API: `from rerank_cli import rerank`."""

from __future__ import annotations

import pytest

from rerank_cli import rerank
from rerank_cli.errors import ApiRefused
from tests.conftest import TEST_KEY
from tests.server import RerankServer


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, isolated_env: dict[str, str]) -> None:
    for name in ("GR_KEY", "RERANK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)


def test_ranks_through_the_api_and_uses_the_cache(server: RerankServer) -> None:
    docs = ["Bananas are yellow.", "Paris is the capital of France."]
    options = {"base_url": server.base_url, "api_key": TEST_KEY}
    results = rerank("capital of France", docs, **options)
    assert [r.document.text for r in results] == [docs[1], docs[0]]
    assert [r.rank for r in results] == [1, 2]
    assert server.billed_documents == 2
    again = rerank("capital of France", docs, top_k=1, **options)
    assert [r.document.index for r in again] == [1]
    assert server.billed_documents == 2  # answered by the score cache


def test_offline_and_errors() -> None:
    found = rerank("paris", ["bananas", "paris"], engine="lexical", min_score=0.01)
    assert [r.document.text for r in found] == ["paris"]
    with pytest.raises(ApiRefused, match="no API key"):
        rerank("q", ["d"])
