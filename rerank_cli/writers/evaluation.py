"""Output of ``rerank eval``: the metrics as a table or as one JSON object."""

from __future__ import annotations

from typing import IO, Any

import orjson

from rerank_cli.core.metrics import AT_METRICS, Evaluation
from rerank_cli.words import plural
from rerank_cli.writers.common import WriteOptions, render

LABELS = {"ndcg": "nDCG", "mrr": "MRR", "recall": "Recall", "p": "P"}


def evaluation_record(evaluation: Evaluation, per_query: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "queries": evaluation.queries,
        "at": evaluation.at,
        "metrics": evaluation.mean,
        "not_in_run": len(evaluation.not_in_run),
        "not_in_qrels": len(evaluation.not_judged),
    }
    if per_query:
        record["per_query"] = evaluation.per_query
    return record


def write_evaluation(
    evaluation: Evaluation, fmt: str, per_query: bool, out: IO[bytes], options: WriteOptions
) -> None:
    if fmt == "json":
        record = evaluation_record(evaluation, per_query)
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
