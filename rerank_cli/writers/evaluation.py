"""Output of ``rerank eval``: the metrics as a table or as one JSON object."""

from __future__ import annotations

from typing import IO, Any

import orjson

from rerank_cli.core.metrics import (
    AT_METRICS,
    PERMUTATIONS,
    SEED,
    TEST_NAME,
    Comparison,
    Evaluation,
)
from rerank_cli.words import plural
from rerank_cli.writers.common import WriteOptions, render

LABELS = {"ndcg": "nDCG", "mrr": "MRR", "recall": "Recall", "p": "P"}


def comparison_record(comparison: Comparison, per_query: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "queries": len(comparison.queries),
        "test": TEST_NAME,
        "permutations": PERMUTATIONS,
        "seed": SEED,
        "metrics": {
            name: {
                "run": comparison.run[name],
                "baseline": comparison.baseline[name],
                "delta": comparison.delta[name],
                "p": comparison.p_value[name],
            }
            for name in comparison.run
        },
    }
    if per_query:  # the baseline's own figures; the run's are under the record's per_query
        record["per_query"] = comparison.baseline_per_query
    return record


def evaluation_record(
    evaluation: Evaluation, per_query: bool, comparison: Comparison | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "queries": evaluation.queries,
        "at": evaluation.at,
        "metrics": evaluation.mean,
        "not_in_run": len(evaluation.not_in_run),
        "not_in_qrels": len(evaluation.not_judged),
    }
    if comparison is not None:
        record["baseline"] = comparison_record(comparison, per_query)
    if per_query:
        record["per_query"] = evaluation.per_query
    return record


def write_evaluation(
    evaluation: Evaluation,
    fmt: str,
    per_query: bool,
    out: IO[bytes],
    options: WriteOptions,
    comparison: Comparison | None = None,
) -> None:
    if fmt == "json":
        record = evaluation_record(evaluation, per_query, comparison)
        out.write(orjson.dumps(record) + b"\n")
        return
    from rich.table import Table

    at = evaluation.at
    queries = evaluation.queries
    summary = Table(box=None, pad_edge=False, header_style="bold")
    summary.add_column(f"mean, {plural(queries, 'query')}", no_wrap=True)
    for k in at:
        summary.add_column(f"@{k}", justify="right", no_wrap=True)
    mean = evaluation.mean
    for metric in AT_METRICS:
        summary.add_row(LABELS[metric], *(f"{mean[f'{metric}@{k}']:.4f}" for k in at))
    summary.add_row("MAP", *([""] * (len(at) - 1)), f"{mean['map']:.4f}")
    render(summary, out, options)
    if comparison is not None:
        out.write(b"\n")
        render(comparison_table(comparison), out, options)
    if not per_query:
        return
    names = list(mean)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("query", no_wrap=True, overflow="ellipsis", max_width=24)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for qid, figures in evaluation.per_query.items():
        table.add_row(qid, *(f"{figures[name]:.4f}" for name in names))
    out.write(b"\n")
    render(table, out, options)
    if comparison is not None:
        out.write(b"\n")
        render(per_query_deltas(comparison, evaluation, names), out, options)


def per_query_deltas(comparison: Comparison, evaluation: Evaluation, names: list[str]) -> Any:
    """Run − baseline for every paired query and metric: where the reranker helped or hurt."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Δ vs baseline", no_wrap=True, overflow="ellipsis", max_width=24)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for qid in comparison.queries:
        mine, theirs = evaluation.per_query[qid], comparison.baseline_per_query[qid]
        table.add_row(qid, *(f"{mine[name] - theirs[name]:+.4f}" for name in names))
    return table


def comparison_table(comparison: Comparison) -> Any:
    from rich.table import Table

    table = Table(
        box=None,
        pad_edge=False,
        header_style="bold",
        caption=f"p: {TEST_NAME}, {PERMUTATIONS:,} sign flips (exact when 2^n is fewer), "
        f"seed {SEED}",
        caption_justify="left",
    )
    table.add_column(f"vs baseline, {plural(len(comparison.queries), 'query')}", no_wrap=True)
    for column in ("run", "baseline", "delta", "p"):
        table.add_column(column, justify="right", no_wrap=True)
    for name in comparison.run:
        metric, _, k = name.partition("@")
        label = LABELS.get(metric, metric.upper()) + (f"@{k}" if k else "")
        table.add_row(
            label,
            f"{comparison.run[name]:.4f}",
            f"{comparison.baseline[name]:.4f}",
            f"{comparison.delta[name]:+.4f}",
            f"{comparison.p_value[name]:.4f}",
        )
    return table
