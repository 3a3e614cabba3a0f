"""``rerank account`` — the prepaid balance (gigarouter)."""

from __future__ import annotations

from typing import Any

import typer

from rerank_cli.cli.options import OutputOpt, VerboseOpt, setting_options


@setting_options("base_url", "api_key")
def account(
    ctx: typer.Context,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
    **settings: Any,
) -> None:
    """Show the account's balance (GET /account). The key travels in that URL's query string,
    so the URL is never printed."""
    from rerank_cli.jobs import catalog_job as catalog
    from rerank_cli.settings import load

    env = ctx.obj
    resolved = load(env.env, settings)
    raise typer.Exit(catalog.run_account(env, resolved, output.value if output else None, verbose))
