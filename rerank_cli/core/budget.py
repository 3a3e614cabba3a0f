"""What a run will cost before it runs: documents to send after dedup and cache, requests, and
the price from the provider's model listing. Backs --dry-run, --max-docs and --max-cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rerank_cli.settings.schema import Settings
from rerank_cli.words import plural


@dataclass
class Estimate:
    documents: int  # records read
    unique: int  # distinct texts (chunks included)
    cached: int  # answered by the score cache
    to_send: int  # billed, if the run goes ahead
    requests: int
    price_per_1k: float | None  # USD per 1,000 documents; None: unknown
    price_note: str = ""  # why the price is unknown

    @property
    def cost(self) -> float | None:
        if self.price_per_1k is None:
            return 0.0 if self.to_send == 0 else None
        return self.to_send * self.price_per_1k / 1000.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimated_cost"] = self.cost
        if not self.price_note:
            del data["price_note"]
        return data

    def text(self) -> str:
        cost = "price unknown" if self.cost is None else f"${self.cost:.6f}"
        note = f" ({self.price_note})" if self.cost is None and self.price_note else ""
        return (
            f"dry run: {plural(self.documents, 'document')}, {self.unique:,} unique, "
            f"{self.cached:,} cached, {self.to_send:,} to send in "
            f"{plural(self.requests, 'request')}, estimated {cost}{note}"
        )


def budget_refusal(estimate: Estimate, settings: Settings) -> str | None:
    """Why a run over max_docs or max_cost must not start, or None when it may."""
    if settings.max_docs is not None and estimate.to_send > settings.max_docs:
        return (
            f"refusing to send {estimate.to_send} documents: over the limit of max_docs = "
            f"{settings.max_docs} ({estimate.unique} unique, {estimate.cached} cached)"
        )
    if settings.max_cost is not None:
        cost = estimate.cost
        if cost is None:
            return (
                f"max_cost = {settings.max_cost:g} is set but the price of {settings.model} is "
                f"unknown ({estimate.price_note or 'not listed'})"
            )
        if cost > settings.max_cost:
            return (
                f"refusing to spend an estimated ${cost:.6f} on {estimate.to_send} documents: "
                f"over the limit of max_cost = {settings.max_cost:g}"
            )
    return None
