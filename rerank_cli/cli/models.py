"""``rerank models`` — the models an endpoint serves, with live prices."""

from __future__ import annotations

from typing import Any

import typer

from rerank_cli.cli.options import OutputOpt, VerboseOpt, setting_options


@setting_options("base_url", "api_key")
def models(
    ctx: typer.Context,
    output: OutputOpt = None,
    verbose: VerboseOpt = False,
    **settings: Any,
) -> None:
    """List the models the API serves (GET /models), with their prices."""
    from rerank_cli.jobs import catalog_job as catalog
    from rerank_cli.settings import load

    env = ctx.obj
    resolved = load(env.env, settings)
    raise typer.Exit(catalog.run_models(env, resolved, output.value if output else None, verbose))
