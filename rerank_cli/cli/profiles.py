"""``rerank profiles [NAME]`` — the providers rerank knows, and which have a key set; with a
name, one profile field by field, with its notes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rerank_cli.cli.options import OutputOpt


def profiles(
    ctx: typer.Context,
    name: Annotated[
        Optional[str],  # noqa: UP045  (Typer reads annotations at run time on 3.10)
        typer.Argument(
            help="Show this profile field by field: limits, fields sent, notes.",
            metavar="[NAME]",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """List provider profiles: URL, the key variables each reads and whether one is set (never
    the key). With NAME, that profile in full, its notes included. Change or add profiles in
    [profiles.NAME] sections of the config file."""
    from rerank_cli.jobs import catalog_job as catalog

    fmt = output.value if output else None
    if name is not None:
        raise typer.Exit(catalog.run_profile(ctx.obj, name, fmt))
    raise typer.Exit(catalog.run_profiles(ctx.obj, fmt))
