"""``rerank account`` — the prepaid balance (gigarouter)."""

from __future__ import annotations

import typer

from rerank_cli.cli.options import (
    ApiKeyOpt,
    BaseUrlOpt,
    OutputOpt,
    VerboseOpt,
    settings_overrides,
)


def account(
    ctx: typer.Context,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the account's balance (GET /account). The key travels in that URL's query string,
    so the URL is never printed."""
    from rerank_cli.jobs import catalog_job as catalog
    from rerank_cli.jobs import rank_job as ranking

    env = ctx.obj
    settings = ranking.settings_for(env, **settings_overrides(base_url=base_url, api_key=api_key))
    raise typer.Exit(catalog.run_account(env, settings, output.value if output else None, verbose))
