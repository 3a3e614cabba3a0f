"""``rerank profiles`` — the providers rerank knows, and which have a key set."""

from __future__ import annotations

import typer

from rerank_cli.cli.options import OutputOpt


def profiles(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List provider profiles: URL, the key variables each reads and whether one is set (never
    the key). Change or add profiles in [profiles.NAME] sections of the config file."""
    from rerank_cli.jobs import catalog_job as catalog

    raise typer.Exit(catalog.run_profiles(ctx.obj, output.value if output else None))
