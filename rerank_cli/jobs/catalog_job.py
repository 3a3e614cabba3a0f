"""The provider's other endpoints: ``GET /models`` (prices) and gigarouter's ``GET /account``
(balance). The account URL carries the key in its query string, so it is never shown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rerank_cli.engines.api.client import RerankClient
from rerank_cli.engines.registry import check_engine
from rerank_cli.errors import ApiError, ExitCode, NothingToShow
from rerank_cli.jobs.execution import guard_output, output_format
from rerank_cli.providers import pricing
from rerank_cli.redact import register_secret
from rerank_cli.settings.resolution import Settings, check_transport_security
from rerank_cli.terminal import Environment
from rerank_cli.writers.catalog import write_account, write_models
from rerank_cli.writers.common import WriteOptions


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


Notify = Callable[[str], None]


async def _get(
    settings: Settings, url: str, params: dict[str, str] | None = None, notify: Notify | None = None
) -> Any:
    async with RerankClient(settings, notify=notify) as client:
        return await client.get_json(url, params=params)


def fetch_models(settings: Settings, notify: Notify | None = None) -> Any:
    return asyncio.run(_get(settings, models_url(settings), notify=notify))


def fetch_account(settings: Settings, notify: Notify | None = None) -> Any:
    import httpx

    key = settings.api_key or ""
    # A server that echoes the URL it got shows the key percent-encoded: hide that form too.
    register_secret(str(httpx.QueryParams({"key": key})).removeprefix("key="))
    return asyncio.run(_get(settings, account_url(settings), {"key": key}, notify))


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


def run_models(
    env: Environment, settings: Settings, output: str | None, verbose: bool = False
) -> ExitCode:
    check_transport_security(settings)
    models = pricing.parse_models(fetch_models(settings, env.info if verbose else None))
    if not models:
        raise NothingToShow(f"{models_url(settings)} lists no models")
    fmt = output_format(env, output)
    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(lambda: write_models(models, fmt, env.stdout, options))
    return ExitCode.OK


def run_account(
    env: Environment, settings: Settings, output: str | None, verbose: bool = False
) -> ExitCode:
    check_engine(settings)  # a key is needed, and must not travel in clear text
    payload = fetch_account(settings, env.info if verbose else None)
    fmt = output_format(env, output)
    guard_output(lambda: write_account(payload, fmt, env.stdout))
    return ExitCode.OK


def run_profiles(env: Environment, output: str | None) -> ExitCode:
    from rerank_cli.providers.profile import list_profiles
    from rerank_cli.settings import config_file as config

    table = config.load(config.config_path(env.env))
    rows = [
        (
            row.name,
            row.url,
            " ".join(f"{v} (set)" if v == row.key_set else v for v in row.key_env) or "—",
            row.origin + (", default" if row.default else ""),
        )
        for row in list_profiles(env.env, table.get("profiles", {}))
    ]
    _write_rows(env, ("profile", "url", "key variables", "from"), rows, output)
    return ExitCode.OK


def run_tasks(env: Environment, output: str | None) -> ExitCode:
    from rerank_cli.providers.instructions import task_rows

    _write_rows(env, ("task", "use for", "instruction"), task_rows(), output)
    return ExitCode.OK


def _write_rows(
    env: Environment,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[str]],
    output: str | None,
) -> None:
    from rerank_cli.writers.listing import write_rows

    fmt = output_format(env, output)
    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(lambda: write_rows(columns, rows, fmt, env.stdout, options))
