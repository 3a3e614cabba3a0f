"""Reading prices out of /models listings."""

from __future__ import annotations

import pytest

from rerank_cli.providers.pricing import documents_per_unit, parse_models, price_per_1k


@pytest.mark.parametrize(
    ("unit", "count"),
    [
        ("1k documents", 1000),
        ("document", 1),
        ("per 1M docs", 1e6),
        ("1000 documents", 1000),
        ("tokens", None),
        ("1M tokens", None),
    ],
)
def test_documents_per_unit(unit: str, count: float | None) -> None:
    assert documents_per_unit(unit) == count


@pytest.mark.parametrize(
    "entry",
    [
        {"pricing": {"price": 0.008, "unit": "1k documents"}},
        {"pricing": {"usd": "0.008", "unit": "per 1k docs"}},
        {"pricing": {"per_1k_documents": 0.008}},
        {"price_per_1k_documents": 0.008},
        {"pricing": {"price": 0.000008, "unit": "document"}},
        {"price": 8.0, "unit": "1M documents"},
    ],
)
def test_price_shapes(entry: dict[str, object]) -> None:
    payload = {"data": [{"id": "m", "kind": "rerank", **entry}]}
    assert price_per_1k(payload, "m") == pytest.approx(0.008)


def test_unknown_model_or_unit_is_none() -> None:
    payload = {"data": [{"id": "m", "pricing": {"price": 1, "unit": "1M tokens"}}]}
    assert price_per_1k(payload, "m") is None
    assert price_per_1k(payload, "other") is None
    assert price_per_1k({"unexpected": True}, "m") is None
    assert parse_models([{"id": "bare-list"}])[0].id == "bare-list"


def test_underscored_units() -> None:
    payload = {"data": [{"id": "m", "pricing": {"price": 0.008, "unit": "1k_documents"}}]}
    assert price_per_1k(payload, "m") == pytest.approx(0.008)
