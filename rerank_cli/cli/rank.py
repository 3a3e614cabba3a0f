"""``rerank rank QUERY [DOCUMENT …]`` — the default command."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rerank_cli.cli.options import API, INPUT, OUTPUT, Color, EngineName, InputFormat, OutputFormat


def rank(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What the documents are ranked against.")],
    documents: Annotated[
        Optional[list[str]],  # noqa: UP045  (typer reads the annotation at run time on 3.10)
        typer.Argument(
            help="Documents to rank; none: read -i files, or stdin.", show_default=False
        ),
    ] = None,
    inputs: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--input",
            "-i",
            help="Read documents from FILE (repeatable; - is stdin).",
            metavar="FILE",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            "-F",
            help="Input format; auto: json if it starts with [, "
            "jsonl if the first line is an object, else lines.",
            rich_help_panel=INPUT,
        ),
    ] = InputFormat.auto,
    field: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Dotted path to the text in JSON objects (default: the first of text, "
            "document, content, body, passage).",
            metavar="PATH",
            rich_help_panel=INPUT,
        ),
    ] = None,
    id_field: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Dotted path to an id in JSON objects, copied to the output.",
            metavar="PATH",
            rich_help_panel=INPUT,
        ),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            help="Warn about and skip invalid records instead of failing.", rich_help_panel=INPUT
        ),
    ] = False,
    engine: Annotated[
        Optional[EngineName],  # noqa: UP045
        typer.Option(
            help="api: the rerank API [default]; lexical: offline BM25, no key needed.",
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="API base URL [env RERANK_BASE_URL; default https://gigarouter.ai/v1].",
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--model",
            "-m",
            help="Model [env RERANK_MODEL; default Qwen/Qwen3-Reranker-0.6B].",
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="API key (prefer env GR_KEY or RERANK_API_KEY: options show in ps).",
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Documents per request [default 64].",
            min=1,
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    max_request_bytes: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Request body budget in bytes [default 4000000].",
            min=1,
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--concurrency",
            "-j",
            help="Requests in flight [default 4].",
            min=1,
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    max_retries: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Retries per request on network errors, 408/409/425/429/5xx [default 6].",
            min=0,
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="Seconds per request [default 60].",
            min=0.001,
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    wait_cold: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Ask the server to hold a request up to N s while a cold model warms "
            "(Prefer: wait=N; 0: off) [default 30].",
            min=0,
            metavar="N",
            rich_help_panel=API,
            show_default=False,
        ),
    ] = None,
    allow_insecure: Annotated[
        bool,
        typer.Option(
            help="Allow sending the key over plain http:// to another host.", rich_help_panel=API
        ),
    ] = False,
    output: Annotated[
        Optional[OutputFormat],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            help="Output format [default: table on a terminal, else jsonl].",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    top_k: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--top-k",
            "-k",
            help="Show the best N only.",
            min=1,
            metavar="N",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    min_score: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--min-score",
            "-s",
            help="Show results scoring at least X only.",
            metavar="X",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print no results; the exit code tells (0 results, 1 none).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="A summary on stderr at the end.", rich_help_panel=OUTPUT
        ),
    ] = False,
    color: Annotated[
        Color, typer.Option(help="Colour (NO_COLOR is honoured).", rich_help_panel=OUTPUT)
    ] = Color.auto,
) -> None:
    """Rank documents by relevance to QUERY."""
    from rerank_cli import ranking
    from rerank_cli.pipeline import Filters
    from rerank_cli.readers import ReadOptions

    env = ctx.obj
    env.color_mode = color.value
    settings = ranking.settings_for(
        env,
        engine=engine.value if engine else None,
        base_url=base_url,
        model=model,
        api_key=api_key,
        batch_size=batch_size,
        max_request_bytes=max_request_bytes,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        wait_cold=wait_cold,
        allow_insecure=allow_insecure or None,
    )
    job = ranking.RankJob(
        query=query,
        arguments=documents or [],
        inputs=inputs or [],
        read_options=ReadOptions(
            format=input_format.value, field=field, id_field=id_field, skip_invalid=skip_invalid
        ),
        settings=settings,
        output=output.value if output else None,
        filters=Filters(top_k=top_k, min_score=min_score),
        quiet=quiet,
        verbose=verbose,
    )
    raise typer.Exit(ranking.run(env, job))
