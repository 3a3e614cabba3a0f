"""``rerank models`` — the models an endpoint serves, with live prices."""

from __future__ import annotations

import typer

from rerank_cli.cli.options import (
    ApiKeyOpt,
    BaseUrlOpt,
    OutputOpt,
    VerboseOpt,
    settings_overrides,
)


def models(
    ctx: typer.Context,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List the models the API serves (GET /models), with their prices."""
    from rerank_cli.jobs import catalog_job as catalog
    from rerank_cli.jobs import rank_job as ranking

    env = ctx.obj
    settings = ranking.settings_for(env, **settings_overrides(base_url=base_url, api_key=api_key))
    raise typer.Exit(catalog.run_models(env, settings, output.value if output else None, verbose))
