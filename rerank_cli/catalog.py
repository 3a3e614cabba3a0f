"""The provider's other endpoints: ``GET /models`` (prices) and gigarouter's ``GET /account``
(balance). The account URL carries the key in its query string, so it is never shown."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from rerank_cli import pricing
from rerank_cli.client import RerankClient
from rerank_cli.errors import ApiError
from rerank_cli.settings import Settings


def models_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/models"


def account_url(settings: Settings) -> str:
    """gigarouter serves the balance beside the API root: ``https://host/account``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(settings.base_url)
    root = parts.path.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, root + "/account", "", ""))


async def _get(settings: Settings, url: str, params: dict[str, str] | None = None) -> Any:
    async with RerankClient(settings) as client:
        return await client.get_json(url, params=params)


def fetch_models(settings: Settings) -> Any:
    return asyncio.run(_get(settings, models_url(settings)))


def fetch_account(settings: Settings) -> Any:
    return asyncio.run(_get(settings, account_url(settings), {"key": settings.api_key or ""}))


def price_per_1k(settings: Settings) -> tuple[float | None, str]:
    """(USD per 1,000 documents, why unknown). Never raises: a price is a nicety, not a need,
    so it gets one quick try rather than the full retry budget."""
    quick = replace(settings, max_retries=0, timeout=min(settings.timeout, 10.0), wait_cold=0)
    try:
        payload = fetch_models(quick)
    except ApiError as error:
        return None, f"GET /models failed: {error}"
    price = pricing.price_per_1k(payload, settings.model)
    return price, "" if price is not None else f"{settings.model} has no per-document price listed"
