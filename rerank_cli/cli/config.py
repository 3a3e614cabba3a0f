"""``rerank config path|show|set|unset`` — the config file."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Show or change the config file (config.toml).", no_args_is_help=True)


@app.command()
def path(ctx: typer.Context) -> None:
    """Print the config file's path."""
    from rerank_cli.settings import config_file as config

    ctx.obj.stdout.write(f"{config.config_path(ctx.obj.env)}\n".encode())


@app.command()
def show(ctx: typer.Context) -> None:
    """Print the config file, keys redacted."""
    from rerank_cli.settings import config_edit as configuration

    ctx.obj.stdout.write(configuration.show(ctx.obj.env).encode())


@app.command("set")
def set_(
    ctx: typer.Context,
    key: Annotated[
        str, typer.Argument(help="A setting, e.g. api_key, model, base_url.", metavar="KEY")
    ],
    value: Annotated[str, typer.Argument(help="Its value.", metavar="VALUE")],
) -> None:
    """Set KEY to VALUE (the file is written with mode 0600)."""
    from rerank_cli.settings import config_edit as configuration

    ctx.obj.info(configuration.set_value(ctx.obj.env, key, value))


@app.command()
def unset(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The setting to remove.", metavar="KEY")],
) -> None:
    """Remove KEY from the config file."""
    from rerank_cli.settings import config_edit as configuration

    ctx.obj.info(configuration.unset_value(ctx.obj.env, key))
