"""``rerank cache path|stats|clear`` — the score cache."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Show or clear the score cache (scores already paid for).", no_args_is_help=True
)


def _out(ctx: typer.Context, text: str) -> None:
    ctx.obj.stdout.write(text.encode("utf-8"))
    ctx.obj.stdout.flush()


@app.command()
def path(ctx: typer.Context) -> None:
    """Print the cache file's path (RERANK_CACHE_DIR overrides the directory)."""
    from rerank_cli.store import score_cache as cache

    _out(ctx, f"{cache.cache_path(ctx.obj.env)}\n")


@app.command()
def stats(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Entries, size on disk, and the last run's hits and misses."""
    from rerank_cli.store import maintenance as cache_admin

    report = cache_admin.stats(ctx.obj.env, ctx.obj.warn)
    if json:
        import orjson

        _out(ctx, orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        _out(ctx, report.text())


@app.command()
def clear(
    ctx: typer.Context,
    older_than: Annotated[
        Optional[float],  # noqa: UP045  (typer reads the annotation at run time on 3.10)
        typer.Option(
            "--older-than",
            min=0,
            metavar="DAYS",
            help="Delete only scores stored more than DAYS ago (default: delete all, "
            "then compact the file).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete cached scores."""
    from rerank_cli.store import maintenance as cache_admin

    ctx.obj.info(cache_admin.clear(ctx.obj.env, ctx.obj.warn, older_than))
