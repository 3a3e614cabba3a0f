"""Prices from a provider's ``GET /models`` listing, normalised to USD per 1,000 documents.

Providers describe prices in different shapes; we read the common ones and say "price unknown"
rather than guess when none fits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Unit words → how many documents one priced unit covers.
_UNIT = re.compile(
    r"(?:per[\s_]*)?(\d+(?:[.,]\d+)?)?[\s_]*([kKmM])?[\s_]*(?:doc|document|search|request)", re.I
)
_PRICE_KEYS = ("price", "usd", "amount", "cost", "value")
_PER_KEY = re.compile(r"(?:price_)?per_?(\d+)?([km])?_?(?:doc|document)s?(?:_usd)?$", re.I)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    kind: str
    price: float | None  # USD per unit
    unit: str  # as the provider wrote it, e.g. "1k documents"
    per_1k_documents: float | None  # USD per 1,000 documents, when the unit is documents


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().lstrip("$"))
        except ValueError:
            return None
    return None


def documents_per_unit(unit: str) -> float | None:
    """``"1k documents"`` → 1000, ``"document"`` → 1, ``"per 1M docs"`` → 1e6; None if the unit
    is not documents."""
    match = _UNIT.search(unit)
    if not match:
        return None
    count = float((match.group(1) or "1").replace(",", "."))
    scale = {"k": 1e3, "m": 1e6}.get((match.group(2) or "").lower(), 1.0)
    return count * scale


def _price_and_unit(entry: dict[str, Any]) -> tuple[float | None, str]:
    pricing = entry.get("pricing", entry.get("price"))
    if isinstance(pricing, dict):
        unit = str(pricing.get("unit", pricing.get("per", "")))
        for key in _PRICE_KEYS:
            number = _number(pricing.get(key))
            if number is not None:
                return number, unit
        for key, value in pricing.items():  # {"per_1k_documents": 0.008} and the like
            match = _PER_KEY.match(str(key))
            if match and _number(value) is not None:
                return _number(value), f"{match.group(1) or '1'}{match.group(2) or ''} documents"
    elif pricing is not None and _number(pricing) is not None:
        return _number(pricing), str(entry.get("unit", entry.get("price_unit", "")))
    for key, value in entry.items():
        match = _PER_KEY.match(str(key))
        if match and _number(value) is not None:
            return _number(value), f"{match.group(1) or '1'}{match.group(2) or ''} documents"
    return None, ""


def _entries(payload: Any) -> Iterator[dict[str, Any]]:
    items = payload.get("data", payload.get("models")) if isinstance(payload, dict) else payload
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def parse_models(payload: Any) -> list[ModelInfo]:
    models = []
    for entry in _entries(payload):
        model_id = entry.get("id", entry.get("name"))
        if not isinstance(model_id, str):
            continue
        kind = str(entry.get("kind", entry.get("type", entry.get("task", ""))))
        price, unit = _price_and_unit(entry)
        per_unit = documents_per_unit(unit) if unit else None
        per_1k = price * 1000.0 / per_unit if price is not None and per_unit else None
        models.append(ModelInfo(model_id, kind, price, unit, per_1k))
    return models


def price_per_1k(payload: Any, model: str) -> float | None:
    for info in parse_models(payload):
        if info.id == model:
            return info.per_1k_documents
    return None
