"""``rerank batch INPUT`` — many queries, each with its documents, on one session."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from rerank_cli.cli.options import (
    INPUT,
    OUTPUT,
    Color,
    ColorOpt,
    DryRunOpt,
    InputFormat,
    MinScoreOpt,
    StatsOpt,
    TopKOpt,
    VerboseOpt,
    YesOpt,
    job_options,
    setting_options,
)

EXAMPLES = """**Examples**

```
rerank batch queries.jsonl --out run.jsonl -k 10
rerank batch queries.jsonl --out run.jsonl --resume   # after a kill
rerank batch queries.jsonl --shard 0/4 --out part0.jsonl  # job 1 of 4
rerank batch queries.jsonl --id-field docid -o trec > run.trec
rerank batch queries.jsonl --dry-run   # what the whole file costs
rerank batch queries.jsonl --corpus docs.jsonl --id-field docid
rerank batch queries.jsonl --corpus corpus.jsonl --id-field _id \\
  --candidates bm25.trec --depth 100 -o trec > reranked.trec
```
"""


class BatchFormat(str, Enum):
    jsonl = "jsonl"
    trec = "trec"


@setting_options()
def batch(
    ctx: typer.Context,
    input_file: Annotated[
        str,
        typer.Argument(
            help='JSON lines, one query each: {"id", "query", "documents": [strings or '
            'objects], "instruction"?}; - is stdin.',
            metavar="INPUT",
        ),
    ],
    corpus: Annotated[
        Optional[str],  # noqa: UP045  (Typer reads annotations at run time on 3.10)
        typer.Option(
            help="The documents of every query, in any rank input format (-F); query lines are "
            'then {"id", "query"}. Ids: --id-field, else the index in FILE.',
            metavar="FILE",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    candidates: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="A TREC run (qid Q0 docid rank score tag) or batch output: rerank only the "
            "--corpus ids it "
            "names for each query, its top --depth by score (ties: docid descending, as "
            "trec_eval).",
            metavar="RUN",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    depth: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="With --candidates: the run's top N per query [default 100].",
            metavar="N",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            "-F",
            help="The --corpus format, as rank's -F (auto: detected).",
            rich_help_panel=INPUT,
        ),
    ] = InputFormat.auto,
    field: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Dotted path to the text in document objects (default: the first of text, "
            "document, content, body, passage; in a --corpus, title + text joined as BEIR "
            "does when both are strings).",
            metavar="PATH",
            rich_help_panel=INPUT,
        ),
    ] = None,
    id_field: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Dotted path to an id in document objects, copied to the output (the docid "
            "of -o trec).",
            metavar="PATH",
            rich_help_panel=INPUT,
        ),
    ] = None,
    shard: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Rank only shard K of N (0-based): the queries whose id hashes to K mod N.",
            metavar="K/N",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Optional[BatchFormat],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            help="jsonl: one line per query; trec: a TREC run (qid Q0 docid rank score tag).",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--out",
            help="Write to FILE (each query's line flushed as it completes) [default: stdout].",
            metavar="FILE",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="With --out: skip the queries complete in FILE; redo a torn last line and "
            "failed queries (-o trec: the last query in FILE is always redone).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    fail_fast: Annotated[
        bool,
        typer.Option(
            help="Stop at the first query that fails (else: write an error line, go on, "
            "exit 4 at the end).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    no_text: Annotated[
        bool,
        typer.Option(
            "--no-text",
            help="Leave the documents' text out of the jsonl results.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    top_k: TopKOpt = None,
    min_score: MinScoreOpt = None,
    verbose: VerboseOpt = False,
    color: ColorOpt = Color.auto,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    stats: StatsOpt = None,
    **settings: Any,
) -> None:
    """Rank the documents of many queries (JSON lines) on one session: one connection pool,
    one score cache, queries running concurrently within -j requests in flight.

    Lines are written as their queries complete (not in input order).
    """
    params = {**locals(), "quiet": False}
    from rerank_cli.errors import UsageError
    from rerank_cli.jobs import batch_job
    from rerank_cli.sources import ReadOptions
    from rerank_cli.sources.queries import parse_shard

    if input_format is not InputFormat.auto and corpus is None:
        raise UsageError("-F/--format is the --corpus format: give --corpus FILE")
    env = ctx.obj
    job = batch_job.BatchJob(
        input=input_file,
        read_options=ReadOptions(format="jsonl", field=field, id_field=id_field),
        corpus=corpus,
        corpus_options=ReadOptions(format=input_format.value, field=field, id_field=id_field),
        candidates=candidates,
        depth=depth,
        out=out,
        resume=resume,
        shard=parse_shard(shard) if shard is not None else None,
        fail_fast=fail_fast,
        with_text=not no_text,
        **job_options(ctx, params),
    )
    raise typer.Exit(batch_job.run(env, job))
