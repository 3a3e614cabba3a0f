"""``rerank eval``: qrels and a run in, trec_eval's metrics out, and the quality gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rerank_cli.core.metrics import Comparison, Evaluation, Qrels, compare, evaluate
from rerank_cli.errors import ExitCode, InputError, UsageError
from rerank_cli.jobs.execution import JobOptions, guard_output
from rerank_cli.jobs.rank_job import read_input
from rerank_cli.settings import values
from rerank_cli.sources.corpus import beir_queries
from rerank_cli.sources.judgements import read_qrels, read_run
from rerank_cli.sources.records import ReadOptions, ReadReport
from rerank_cli.terminal import Environment
from rerank_cli.words import plural
from rerank_cli.writers.common import WriteOptions
from rerank_cli.writers.evaluation import write_evaluation

# The gate's options and the metric each checks (at the largest k of --at).
GATES = (("--min-ndcg", "ndcg"), ("--min-mrr", "mrr"), ("--min-recall", "recall"))


@dataclass
class EvalJob:
    qrels: str | None = None  # None with --dataset
    run: str | None = None
    at: list[int] = field(default_factory=lambda: [10])
    per_query: bool = False
    output: str | None = None
    minimums: dict[str, float] = field(default_factory=dict)  # "ndcg" → the gate's minimum
    baseline: str | None = None  # --baseline RUN: compared query by query
    dataset: str | None = None  # --dataset DIR: a BEIR folder, reranked then judged
    candidates: str | None = None  # --candidates RUN (with --dataset)
    depth: int | None = None
    save_run: str | None = None  # --save-run FILE: the reranked run (TREC)
    options: JobOptions | None = None  # the session's settings (with --dataset)


def parse_at(text: str) -> list[int]:
    """``1,5,10`` → [1, 5, 10] (sorted, each once)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() and int(part) >= 1 for part in parts):
        raise UsageError(
            values.problem("--at", "whole numbers ≥ 1 separated by commas (e.g. 1,5,10)", text)
        )
    return sorted({int(part) for part in parts})


def run_eval(env: Environment, job: EvalJob) -> ExitCode:
    check_options(job)
    report = ReadReport(on_warning=env.warn)
    if job.dataset is not None:
        reranked = rerank_dataset(env, job, report)
        if reranked is None:  # --dry-run: batch reported what the reranking would send
            return ExitCode.OK
        qrels, run_name, run = reranked
    else:
        assert job.qrels is not None and job.run is not None
        qrels_name, qrels_data = read_input(env, job.qrels)
        qrels = read_qrels(qrels_data, qrels_name, report)
        run_name, run_data = read_input(env, job.run)
        run = read_run(run_data, run_name, report)
    evaluation = evaluate(qrels, run, job.at)
    if not evaluation.queries:
        raise InputError(
            f"no query of the run is in the qrels: the run ranks {_some(list(run))}, the "
            f"qrels judge {_some(list(qrels))} (same ids, as text?)",
            run_name,
        )
    if evaluation.not_in_run:
        env.warn(
            f"{plural(len(evaluation.not_in_run), 'query')} of the qrels "
            f"{'is' if len(evaluation.not_in_run) == 1 else 'are'} not in the run: not averaged "
            f"(trec_eval's convention, as without -c), e.g. {evaluation.not_in_run[0]!r}"
        )
    if evaluation.not_judged:
        env.warn(
            f"{plural(len(evaluation.not_judged), 'query')} of the run "
            f"{'is' if len(evaluation.not_judged) == 1 else 'are'} not in the qrels: not "
            f"evaluated, e.g. {evaluation.not_judged[0]!r}"
        )
    comparison = None
    if job.baseline is not None:
        comparison = compare_baseline(env, job, qrels, evaluation, report)
    fmt = job.output or ("table" if env.stdout_isatty else "json")
    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(
        lambda: write_evaluation(evaluation, fmt, job.per_query, env.stdout, options, comparison)
    )
    env.stdout.flush()
    k = max(evaluation.at)
    failed = False
    for option, metric in GATES:
        minimum = job.minimums.get(metric)
        if minimum is None:
            continue
        name = f"{metric}@{k}"
        value = evaluation.mean[name]
        if value < minimum:
            failed = True
            env.stderr.write(
                f"rerank: {name} {value:.4f} is below {option} {minimum:g} "
                f"(mean over {plural(evaluation.queries, 'query')})\n"
            )
    env.stderr.flush()
    return ExitCode.NOTHING_TO_SHOW if failed else ExitCode.OK


def check_options(job: EvalJob) -> None:
    if job.dataset is None:
        if job.qrels is None or job.run is None:
            raise UsageError("give --qrels QRELS and --run RUN, or --dataset DIR")
        for option, value in (
            ("--candidates", job.candidates),
            ("--depth", job.depth),
            ("--save-run", job.save_run),
        ):
            if value is not None:
                raise UsageError(f"{option} needs --dataset DIR: it is about the reranking")
    else:
        if job.qrels is not None or job.run is not None:
            raise UsageError("--dataset DIR brings its qrels and makes the run: no --qrels/--run")
        if job.depth is not None and job.candidates is None:
            raise UsageError("--depth needs --candidates RUN: it cuts each query's candidates")
        if job.depth is not None and job.depth < 1:
            raise UsageError(f"--depth takes a whole number ≥ 1, got {job.depth}")
    if [job.qrels, job.run, job.baseline, job.candidates].count("-") > 1:
        raise UsageError("only one input can be stdin (-)")


def rerank_dataset(
    env: Environment, job: EvalJob, report: ReadReport
) -> tuple[Qrels, str, dict[str, dict[str, float]]] | None:
    """--dataset DIR: read the BEIR folder, rerank each judged query's candidates with
    ``rerank batch``'s job on one session (the corpus read as batch reads it: ``_id`` the id,
    title + text the text), and parse the TREC run it writes — the very bytes --save-run
    keeps, so the figures equal ``rerank eval --qrels … --run <saved run>``. None after a
    dry run (--dry-run, --stats and the budgets are batch's, for the whole dataset)."""
    from rerank_cli.jobs import batch_job
    from rerank_cli.sources.corpus import Candidate

    assert job.dataset is not None and job.options is not None
    root = Path(job.dataset)
    paths = {part: root / part for part in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")}
    for part, path in paths.items():
        if not path.is_file():
            raise UsageError(
                f"--dataset {job.dataset}: no {part} (a BEIR folder holds corpus.jsonl, "
                "queries.jsonl and qrels/test.tsv)"
            )
    qrels_name, qrels_data = read_input(env, str(paths["qrels/test.tsv"]))
    qrels = read_qrels(qrels_data, qrels_name, report)
    queries_name, queries_data = read_input(env, str(paths["queries.jsonl"]))
    lines = beir_queries(queries_data, queries_name, qrels, env.warn)
    candidates_run = None
    if job.candidates is None:  # every document judged for the query, in the qrels' order
        candidates_run = {
            qid: [Candidate(docid, 0.0, None) for docid in judged] for qid, judged in qrels.items()
        }
    written: list[bytes] = []
    batch = batch_job.BatchJob(
        input=queries_name,
        input_data=lines,
        read_options=ReadOptions(format="jsonl"),
        corpus=str(paths["corpus.jsonl"]),
        corpus_options=ReadOptions(format="jsonl", id_field="_id"),
        candidates=job.candidates,
        depth=job.depth,
        candidates_run=candidates_run,
        candidates_name=qrels_name,
        sink=written.append,
        fail_fast=True,
        **{name: getattr(job.options, name) for name in JobOptions.__dataclass_fields__},
    )
    batch.output = "trec"
    batch_job.run(env, batch)
    if job.options.dry_run:
        return None
    data = b"".join(written)
    run_name = "the reranked run"
    if job.save_run is not None:
        from rerank_cli.jobs.batch_job import replace_file

        try:
            replace_file(Path(job.save_run), data)
        except OSError as error:
            raise UsageError(f"cannot write --save-run file {job.save_run}: {error}") from None
        run_name = job.save_run
    return qrels, run_name, read_run(data, run_name, report)


def compare_baseline(
    env: Environment, job: EvalJob, qrels: Qrels, evaluation: Evaluation, report: ReadReport
) -> Comparison:
    """--baseline RUN: evaluated on the same qrels, then paired with the run query by query."""
    assert job.baseline is not None
    name, data = read_input(env, job.baseline)
    baseline = evaluate(qrels, read_run(data, name, report), evaluation.at)
    comparison = compare(evaluation, baseline)
    if not comparison.queries:
        raise InputError("no query evaluated in the run is evaluated in the baseline", name)
    unpaired = evaluation.queries - len(comparison.queries)
    if unpaired:
        env.warn(
            f"{plural(unpaired, 'query')} of the run {'is' if unpaired == 1 else 'are'} not "
            f"in the baseline: the comparison is over the "
            f"{plural(len(comparison.queries), 'query')} both evaluate"
        )
    return comparison


def _some(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:3])
    more = f" and {len(ids) - 3:,} more" if len(ids) > 3 else ""
    return f"{plural(len(ids), 'query')} ({shown}{more})"
