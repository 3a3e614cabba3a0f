"""``rerank files QUERY [PATH …]`` — rank files by relevance."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from rerank_cli.cli.options import (
    OUTPUT,
    Color,
    ColorOpt,
    DryRunOpt,
    MinScoreOpt,
    OutputOpt,
    PartialOpt,
    QuietOpt,
    StatsOpt,
    TopKOpt,
    VerboseOpt,
    YesOpt,
    job_options,
    setting_options,
)

WALK = "Files"

EXAMPLES = """**Examples**

```
rerank files "where are retries configured" . -k 3
rerank files "db migrations" src -g '*.py' -0 | xargs -0 $EDITOR
```
"""


@setting_options()
def files(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(help="What the files are ranked against.", metavar="QUERY")
    ],
    paths: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            help="Files and directories to walk [default: .].", metavar="PATH", show_default=False
        ),
    ] = None,
    hidden: Annotated[
        bool,
        typer.Option(
            "--hidden", help="Include hidden files and directories.", rich_help_panel=WALK
        ),
    ] = False,
    no_ignore: Annotated[
        bool,
        typer.Option(
            "--no-ignore",
            help="Ignore .gitignore, .ignore and .rerankignore files.",
            rich_help_panel=WALK,
        ),
    ] = False,
    glob: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--glob",
            "-g",
            help="Include only paths matching PATTERN (gitignore syntax; repeatable); "
            "!PATTERN excludes. Overrides ignore files and the hidden rule.",
            metavar="PATTERN",
            rich_help_panel=WALK,
            show_default=False,
        ),
    ] = None,
    max_depth: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Walk at most N levels below each path (0: the paths themselves only; "
            "1: their direct entries).",
            min=0,
            metavar="N",
            rich_help_panel=WALK,
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-L",
            help="Follow symlinks that lead out of the walked directory.",
            rich_help_panel=WALK,
        ),
    ] = False,
    max_filesize: Annotated[
        str,
        typer.Option(
            help="Skip files larger than this (K, M, G suffixes: powers of 1024).",
            metavar="SIZE",
            rich_help_panel=WALK,
        ),
    ] = "1M",
    include_secrets: Annotated[
        bool,
        typer.Option(
            "--include-secrets",
            help="Also read files that may hold secrets (`.env*`, `*.pem`, `*.key`, `id_rsa*`, "
            "`credentials*` …; see the README). Not recommended.",
            rich_help_panel=WALK,
        ),
    ] = False,
    chunk_lines: Annotated[
        int,
        typer.Option(help="Lines per scored chunk.", min=1, metavar="N", rich_help_panel=WALK),
    ] = 60,
    overlap: Annotated[
        int,
        typer.Option(
            help="Lines shared by consecutive chunks.", min=0, metavar="N", rich_help_panel=WALK
        ),
    ] = 10,
    output: OutputOpt = None,
    null: Annotated[
        bool,
        typer.Option(
            "--null",
            "-0",
            help="NUL-terminated paths (implies -o plain), for xargs -0.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    top_k: TopKOpt = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Show every file: on a terminal the table shows the best 20 unless -k or "
            "--all is given (pipes and other formats always get every file).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    min_score: MinScoreOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    partial: PartialOpt = False,
    color: ColorOpt = Color.auto,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    stats: StatsOpt = None,
    **settings: Any,
) -> None:
    """Rank files (default: the working directory) by relevance to QUERY.

    Ignore files, hidden files, binary files, files over --max-filesize and likely secrets are
    skipped; each file is scored by its best chunk of --chunk-lines lines.
    """
    params = dict(locals())
    from rerank_cli.core.line_chunks import LineChunker
    from rerank_cli.jobs import files_job as core
    from rerank_cli.sources.walk import WalkOptions, parse_size

    env = ctx.obj
    job = core.FilesJob(
        query=query,
        paths=paths or [],
        walk_options=WalkOptions(
            hidden=hidden,
            no_ignore=no_ignore,
            globs=tuple(glob or ()),
            max_depth=max_depth,
            follow=follow,
            max_filesize=parse_size(max_filesize),
            include_secrets=include_secrets,
        ),
        chunker=LineChunker(lines=chunk_lines, overlap=overlap),
        null=null,
        show_all=show_all,
        **job_options(ctx, params),
    )
    raise typer.Exit(core.run(env, job))
