"""``rerank tasks`` — the preset instructions for --task."""

from __future__ import annotations

import typer

from rerank_cli.cli.options import OutputOpt


def tasks(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List the --task presets and the instruction each sends."""
    from rerank_cli.jobs import catalog_job as catalog

    raise typer.Exit(catalog.run_tasks(ctx.obj, output.value if output else None))
