"""``rerank rank QUERY [DOCUMENT …]`` — the default command."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from rerank_cli.cli.options import (
    INPUT,
    Color,
    ColorOpt,
    DryRunOpt,
    InputFormat,
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

# --help's last words (Markdown, as the app's rich_markup_mode reads help).
EXAMPLES = """**Examples**

```
rerank "capital of France" "Paris is in France." "Bananas are yellow."
rg -n TODO src | rerank "security-relevant todo" -o plain -k 5
rerank "refund policy" -i tickets.jsonl --field body.text -k 3
git diff | rerank "database migration" -q -s 0.5 && echo review
rerank -- files "a query that is a command's name"
```
"""


@setting_options()
def rank(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(help="What the documents are ranked against.", metavar="QUERY")
    ],
    documents: Annotated[
        Optional[list[str]],  # noqa: UP045  (Typer reads annotations at run time on 3.10)
        typer.Argument(
            help="Documents to rank; none: read -i files, or stdin.",
            metavar="DOCUMENT",
            show_default=False,
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
            help="Input format; auto: json if it starts with [, rg-json if the first line is an "
            "rg --json event, jsonl if it is another object, grep if most lines are "
            "path:line:text of files on disk (rg -n, grep -n output), else lines.",
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
    grep: Annotated[
        bool,
        typer.Option(
            "--grep", help="Input is grep/rg output: same as -F grep.", rich_help_panel=INPUT
        ),
    ] = False,
    null: Annotated[
        bool,
        typer.Option(
            "--null", "-0", help="NUL-separated records: same as -F nul.", rich_help_panel=INPUT
        ),
    ] = False,
    with_path: Annotated[
        bool,
        typer.Option(
            help="grep/rg-json: score 'path:line: text', not the match text alone.",
            rich_help_panel=INPUT,
        ),
    ] = False,
    group: Annotated[
        bool,
        typer.Option(
            help="grep/rg-json: a match with its context lines (a --separated group) is one "
            "document.",
            rich_help_panel=INPUT,
        ),
    ] = False,
    grep_root: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="grep: directory the paths in the input are relative to [default: cwd].",
            metavar="DIR",
            rich_help_panel=INPUT,
        ),
    ] = None,
    output: OutputOpt = None,
    top_k: TopKOpt = None,
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
    """Rank documents by relevance to QUERY.

    `rerank QUERY …` is short for `rerank rank QUERY …`. For a query that is a command's name,
    write `rerank -- files …` or `rerank rank files …`.
    """
    params = dict(locals())
    from rerank_cli.jobs import rank_job as ranking
    from rerank_cli.sources import ReadOptions

    env = ctx.obj
    job = ranking.RankJob(
        query=query,
        arguments=documents or [],
        inputs=inputs or [],
        read_options=ReadOptions(
            format=format_of(input_format, grep=grep, null=null),
            field=field,
            id_field=id_field,
            skip_invalid=skip_invalid,
            with_path=with_path,
            group=group,
            grep_root=grep_root,
        ),
        **job_options(ctx, params),
    )
    raise typer.Exit(ranking.run(env, job))


def format_of(chosen: InputFormat, *, grep: bool, null: bool) -> str:
    """``-F``, or the format one of its aliases (``--grep``, ``-0``) names; two at once is an
    error."""
    from rerank_cli.errors import UsageError

    named = [value for flag, value in ((grep, "grep"), (null, "nul")) if flag]
    if chosen is not InputFormat.auto:
        named.insert(0, chosen.value)
    if len(set(named)) > 1:
        raise UsageError(f"choose one input format, not {' and '.join(sorted(set(named)))}")
    return named[0] if named else chosen.value
