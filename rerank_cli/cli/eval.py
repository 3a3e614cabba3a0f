"""``rerank eval --qrels QRELS --run RUN`` — trec_eval's metrics for a run, and a quality gate."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from rerank_cli.cli.options import (
    INPUT,
    OUTPUT,
    DryRunOpt,
    ReportOpt,
    StatsOpt,
    VerboseOpt,
    YesOpt,
    setting_options,
)

EXAMPLES = """**Examples**

```
rerank eval --qrels qrels.txt --run run.jsonl
rerank eval --qrels test.tsv --run run.trec --at 1,5,10
rerank eval --qrels test.tsv --run run.jsonl --per-query -o json
rerank eval --qrels test.tsv --run run.jsonl --min-ndcg 0.6  # CI gate
rerank eval --qrels test.tsv --run reranked.trec --baseline bm25.trec
rerank eval --dataset scifact --engine lexical --save-run scifact.trec
rerank eval --dataset scifact --candidates bm25.trec --depth 100 --baseline bm25.trec
```
"""

GATE = "Gate (exit 1 when the mean is below)"


def _minimum(metric: str) -> object:
    return typer.Option(
        help=f"Exit 1 when the mean {metric} at the largest k of --at is below X.",
        min=0.0,
        max=1.0,
        metavar="X",
        rich_help_panel=GATE,
        show_default=False,
    )


DATASET = "A BEIR folder end to end (--dataset)"


@setting_options()
def evaluate(
    ctx: typer.Context,
    qrels: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Relevance judgements: TREC qrels (qid 0 docid rel) or BEIR TSV (query-id "
            "corpus-id score, with a header); - is stdin.",
            metavar="QRELS",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="The ranking to judge: a TREC run (qid Q0 docid rank score tag) or rerank "
            "batch's JSON lines (docid: a result's id, else its index); - is stdin.",
            metavar="RUN",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="A second run (e.g. the first stage) judged on the same qrels: shown beside "
            "the run with the delta per metric and a paired randomization test's two-sided p.",
            metavar="RUN",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv): rerank each "
            "judged query's candidates with the engine, then judge the run (in place of "
            "--qrels and --run). A document's text is title + text, as BEIR joins them.",
            metavar="DIR",
            rich_help_panel=DATASET,
            show_default=False,
        ),
    ] = None,
    candidates: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="With --dataset: a TREC run (e.g. BM25) whose top --depth per query are "
            "reranked [default: every document judged for the query].",
            metavar="RUN",
            rich_help_panel=DATASET,
            show_default=False,
        ),
    ] = None,
    depth: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="With --candidates: the run's top N per query [default 100].",
            metavar="N",
            rich_help_panel=DATASET,
            show_default=False,
        ),
    ] = None,
    save_run: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="With --dataset: write the reranked run to FILE (TREC: qid Q0 docid rank "
            "score tag).",
            metavar="FILE",
            rich_help_panel=DATASET,
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        str,
        typer.Option(
            help="The cut-offs k of nDCG@k, MRR@k, Recall@k and P@k, separated by commas.",
            metavar="K,…",
            rich_help_panel=OUTPUT,
        ),
    ] = "10",
    per_query: Annotated[
        bool,
        typer.Option(help="Every query's figures too, not only the mean.", rich_help_panel=OUTPUT),
    ] = False,
    output: ReportOpt = None,
    min_ndcg: Annotated[Optional[float], _minimum("nDCG")] = None,  # noqa: UP045
    min_mrr: Annotated[Optional[float], _minimum("MRR")] = None,  # noqa: UP045
    min_recall: Annotated[Optional[float], _minimum("Recall")] = None,  # noqa: UP045
    verbose: VerboseOpt = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    stats: StatsOpt = None,
    **settings: Any,
) -> None:
    """Score a run against relevance judgements with trec_eval's metrics: nDCG@k, MRR@k,
    Recall@k, P@k and MAP, averaged over the queries both judged and ranked (trec_eval's
    convention). With --min-ndcg/--min-mrr/--min-recall, a CI gate: exit 1 below the bar."""
    from rerank_cli.errors import UsageError
    from rerank_cli.jobs.eval_job import EvalJob, parse_at, run_eval
    from rerank_cli.jobs.execution import JobOptions

    options = None
    if dataset is not None:
        from rerank_cli.settings import load

        options = JobOptions(
            settings=load(ctx.obj.env, settings),
            verbose=verbose,
            yes=yes,
            dry_run=dry_run,
            stats_path=stats,
        )
    else:
        reranking = {"dry_run": dry_run, "stats": stats}
        given = [
            name for name, value in {**reranking, **settings}.items() if value not in (None, False)
        ]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} needs --dataset DIR: without it, eval ranks nothing")

    minimums = {
        metric: value
        for metric, value in (("ndcg", min_ndcg), ("mrr", min_mrr), ("recall", min_recall))
        if value is not None
    }
    job = EvalJob(
        qrels=qrels,
        run=run,
        at=parse_at(at),
        per_query=per_query,
        output=output.value if output else None,
        minimums=minimums,
        baseline=baseline,
        dataset=dataset,
        candidates=candidates,
        depth=depth,
        save_run=save_run,
        options=options,
    )
    raise typer.Exit(run_eval(ctx.obj, job))
