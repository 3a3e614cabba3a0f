"""``rerank cache path|stats|clear`` — the score cache."""

from __future__ import annotations

from enum import Enum
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


class StatsFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


@app.command()
def stats(
    ctx: typer.Context,
    output: Annotated[
        StatsFormat,
        typer.Option(
            "--output",
            "-o",
            help="table: one line per figure; json: one object; jsonl: the object on one line.",
        ),
    ] = StatsFormat.table,
    json: Annotated[
        bool, typer.Option("--json", help="One JSON object on one line (the same as -o jsonl).")
    ] = False,
) -> None:
    """Entries, size on disk, and the last run's hits and misses."""
    from rerank_cli.store import maintenance as cache_admin

    report = cache_admin.stats(ctx.obj.env, ctx.obj.warn)
    if json:  # one line, as it always printed: scripts read it so
        output = StatsFormat.jsonl
    if output is StatsFormat.table:
        _out(ctx, report.text())
        return
    import orjson

    indent = orjson.OPT_INDENT_2 if output is StatsFormat.json else 0
    _out(ctx, orjson.dumps(report.as_dict(), option=indent).decode() + "\n")


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
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Don't ask first (on a terminal, it asks).")
    ] = False,
) -> None:
    """Delete cached scores (scores already paid for: on a terminal, it asks first)."""
    from rerank_cli.errors import NothingToShow
    from rerank_cli.store import maintenance as cache_admin
    from rerank_cli.store.score_cache import cache_path

    env = ctx.obj
    if not yes and env.stderr_isatty and cache_path(env.env).exists():
        which = "every cached score" if older_than is None else "the cached scores older than"
        days = "" if older_than is None else f" {older_than:g} day{'s' * (older_than != 1)}"
        if env.ask(f"delete {which}{days} in {cache_path(env.env)}?") is False:
            raise NothingToShow("nothing deleted (answered no; -y skips the question)")
    env.info(cache_admin.clear(env.env, env.warn, older_than))
