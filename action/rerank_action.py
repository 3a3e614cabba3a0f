"""The GitHub Action's main step (action.yml, step ``rerank``): run rerank with the action's
inputs, then write the job summary and the step's outputs.

The inputs arrive only as environment variables — ``INPUT_QUERY``, ``INPUT_INPUT``, … — set by
action.yml's ``env:``, never interpolated into shell code: an input is data, whatever it holds.
The key comes the same way, as ``GR_KEY`` in the environment, and is never on a command line.

Standard library only: this runs on the Python that rerank is installed in (action/install.sh),
whichever rerank version that is, and talks to rerank through its command line and JSON output.
The pure parts — :func:`plan`, :func:`summary`, :func:`outputs`, :func:`output_text` — are what
tests/test_action.py checks besides running the steps.
"""

from __future__ import annotations

import glob
import html
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# rerank's exit codes (README, "Exit codes"); the step exits with the same code.
OK, NOTHING, USAGE, REFUSED, FAILED, INTERRUPTED = 0, 1, 2, 3, 4, 130
MEANING = {
    OK: "results",
    NOTHING: "nothing to show, or a gate failed",
    USAGE: "usage or input error",
    REFUSED: "the API refused",
    FAILED: "the API or the network failed",
    INTERRUPTED: "interrupted",
}

SUMMARY_ROWS = 20  # rows in the summary without top-k; with it, top-k rows up to MAX_ROWS
MAX_ROWS = 100
CELL_CHARS = 300  # a document's text is cut to this in the summary (never in the outputs)
STDERR_LINES = 20  # rerank's last messages quoted in the summary of a failed run

# Options the action sets itself, or that would leave it no JSON to read.
_OWN_OPTIONS = {
    "-o": "the action reads JSON (it sets -o itself)",
    "--output": "the action reads JSON (it sets -o itself)",
    "-q": "the action reads rerank's output",
    "--quiet": "the action reads rerank's output",
    "--dry-run": "run `rerank --dry-run` in a step of its own",
    "-h": "run `rerank -h` in a step of its own",
    "--help": "run `rerank --help` in a step of its own",
    "--version": "run `rerank --version` in a step of its own",
    "--api-key": "pass the key as env GR_KEY from a secret (a command line is not secret)",
    "--": "the action places the query and paths itself",
}
_FILES_ONLY = {"-0": "the action reads JSON (-0 prints paths)", "--null": "the action reads JSON"}


class InputError(Exception):
    """An input of the action that cannot be used: exit 2, before rerank runs."""


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, as action.yml passes them (``INPUT_MIN_SCORE`` for ``min-score``)."""

    query: str = ""
    input: str = ""
    paths: str = ""
    args: str = ""
    min_score: str = ""
    top_k: str = ""
    qrels: str = ""
    run: str = ""
    min_ndcg: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Inputs:
        values = {f.name: env.get(f"INPUT_{f.name.upper()}", "") for f in fields(cls)}
        return cls(**{name: value.strip() for name, value in values.items()})


@dataclass(frozen=True)
class Plan:
    """What to run: ``mode`` is ``rank``, ``files`` or ``eval``; ``argv`` follows ``rerank``."""

    mode: str
    argv: list[str]


def plan(inputs: Inputs, cwd: Path) -> Plan:
    """The rerank command line for these inputs, or :class:`InputError` saying which input is
    wrong. The mode follows from what is given: qrels and run → eval; paths → files; input →
    rank. Globs in ``input`` are expanded here, relative to ``cwd`` (the workspace)."""
    try:
        extra = shlex.split(inputs.args)
    except ValueError as error:
        raise InputError(f"args: {error}") from None  # not args itself: it may hold a secret
    if inputs.qrels or inputs.run:
        return _eval_plan(inputs, extra)
    if inputs.min_ndcg:
        raise InputError("min-ndcg is a gate of eval: give qrels and run too")
    if not inputs.query:
        raise InputError(
            "query is required: set input (documents to rank) or paths (files to rank) and a "
            "query, or qrels and run (eval)"
        )
    if inputs.input and inputs.paths:
        raise InputError("set input (rank documents) or paths (rank files), not both")
    options = []
    if inputs.top_k:
        options += ["-k", inputs.top_k]
    if inputs.min_score:
        options += ["-s", inputs.min_score]
    if inputs.paths:
        _check_extra(extra, {**_OWN_OPTIONS, **_FILES_ONLY})
        paths = [f"./{path}" if path.startswith("-") else path for path in _lines(inputs.paths)]
        return Plan("files", _command("files", inputs.query, paths, [*options, *extra]))
    if inputs.input:
        _check_extra(extra, _OWN_OPTIONS)
        sources = [arg for name in expand(_lines(inputs.input), cwd) for arg in ("-i", name)]
        return Plan("rank", _command("rank", inputs.query, [], [*sources, *options, *extra]))
    raise InputError("nothing to rank: set input (files or globs) or paths (for rerank files)")


def _command(name: str, query: str, positional: list[str], options: list[str]) -> list[str]:
    """``NAME QUERY POSITIONAL… OPTIONS… -o jsonl``: words of ``args`` that are not options
    follow the query (more documents for rank, more paths for files). A query starting with
    ``-`` would be read as an option there, so it goes last, after ``--``."""
    if query.startswith("-"):
        return [name, *options, "-o", "jsonl", "--", query, *positional]
    return [name, query, *positional, *options, "-o", "jsonl"]


def _eval_plan(inputs: Inputs, extra: list[str]) -> Plan:
    if not (inputs.qrels and inputs.run):
        raise InputError("eval needs both qrels and run")
    unused = [
        name
        for name, value in (
            ("query", inputs.query),
            ("input", inputs.input),
            ("paths", inputs.paths),
            ("min-score", inputs.min_score),
            ("top-k", inputs.top_k),
        )
        if value
    ]
    if unused:
        raise InputError(f"{', '.join(unused)}: not used by eval (qrels and run); remove it")
    _check_extra(extra, _OWN_OPTIONS)
    gate = ["--min-ndcg", inputs.min_ndcg] if inputs.min_ndcg else []
    argv = ["eval", "--qrels", inputs.qrels, "--run", inputs.run, *gate, *extra, "-o", "json"]
    return Plan("eval", argv)


# rerank's short options that take a value: in a cluster (``-vk5``), what follows one is its
# value, not more flags.
_VALUED = frozenset("iFmjoksPIgt")


def _check_extra(extra: Sequence[str], refused: Mapping[str, str]) -> None:
    for token in extra:
        if token.startswith("--"):
            names = [token.split("=", 1)[0]]
        elif token.startswith("-") and len(token) > 1:
            # A cluster of short flags (``-vq`` is ``-v -q``), up to one that takes a value.
            names = []
            for letter in token[1:]:
                names.append(f"-{letter}")
                if letter in _VALUED or not letter.isalnum():
                    break
        else:
            names = [token]
        for name in names:
            if name in refused:
                # The option's name only: a value (a key, say) is not repeated in logs.
                raise InputError(f"args: {name} is not allowed here: {refused[name]}")


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def expand(patterns: Iterable[str], cwd: Path) -> list[str]:
    """Each pattern as it is when it names no glob, else the files it matches (``**`` for any
    depth), sorted; a glob that matches no file is an :class:`InputError`. Duplicates go."""
    names: list[str] = []
    for pattern in patterns:
        # A name that is a file is that file, even when it holds glob characters (data[1].txt).
        if not any(character in pattern for character in "*?[") or (cwd / pattern).is_file():
            names.append(pattern)
            continue
        matches = sorted(glob.glob(pattern, root_dir=cwd, recursive=True))
        files = [match for match in matches if (cwd / match).is_file()]
        if not files:
            raise InputError(f"input: {pattern!r} matches no file (in {cwd})")
        names.extend(files)
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# Reading rerank's output


@dataclass
class Outcome:
    """A finished run: the exit code and what rerank printed (parsed), or why nothing is."""

    code: int
    records: list[dict[str, Any]]  # rank, files: one per result
    report: dict[str, Any] | None  # eval: the one JSON object
    messages: list[str]  # rerank's stderr lines, or the action's own error


def read_results(mode: str, data: bytes, code: int, messages: list[str]) -> Outcome:
    """Parse rerank's stdout. Output that is not JSON after exit 0 is exit 4 (rerank answered
    nonsense); after a failure whatever parses is kept (eval prints its figures below a gate)."""
    try:
        if mode == "eval":
            text = data.decode("utf-8").strip()
            report = json.loads(text) if text else None
            if code == OK and not isinstance(report, dict):
                raise ValueError("no JSON object")
            return Outcome(code, [], report if isinstance(report, dict) else None, messages)
        records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        if not all(isinstance(record, dict) for record in records):
            raise ValueError("a line is not a JSON object")
        return Outcome(code, records, None, messages)
    except ValueError as error:
        if code != OK:
            return Outcome(code, [], None, messages)
        return Outcome(FAILED, [], None, [*messages, f"cannot read rerank's output: {error}"])


# ---------------------------------------------------------------------------------------------
# Outputs


def ndcg_key(report: Mapping[str, Any]) -> str | None:
    """The nDCG the gate checks: at the largest k of ``--at``."""
    at = [k for k in report.get("at", []) if isinstance(k, int)]
    return f"ndcg@{max(at)}" if at else None


def outputs(mode: str, outcome: Outcome, results_file: str) -> dict[str, str]:
    """The step's outputs: ``top`` (rank: the best document's text; files: its path; eval:
    empty), ``count`` (results; eval: queries averaged over), ``ndcg`` (eval: at the largest k),
    ``exit-code`` and ``results-file`` (rerank's JSON output)."""
    top = count = ndcg = ""
    if mode == "eval":
        report = outcome.report or {}
        count = str(report.get("queries", 0))
        key = ndcg_key(report)
        value = report.get("metrics", {}).get(key) if key else None
        ndcg = "" if value is None else repr(float(value))
    else:
        count = str(len(outcome.records))
        if outcome.records:
            best = outcome.records[0]
            top = str(best.get("path" if mode == "files" else "text", ""))
    return {
        "top": top,
        "count": count,
        "ndcg": ndcg,
        "exit-code": str(outcome.code),
        "results-file": results_file,
    }


def output_text(values: Mapping[str, str]) -> str:
    """``$GITHUB_OUTPUT`` lines: ``name=value``, or ``name<<DELIMITER`` … ``DELIMITER`` for a
    value with a line break (written as \\n), with a random delimiter the value does not
    contain (a document cannot end the block early and set outputs of its own)."""
    parts = []
    for name, raw in values.items():
        value = raw.replace("\r\n", "\n").replace("\r", "\n")  # the runner's line breaks
        if "\n" not in value:
            parts.append(f"{name}={value}\n")
            continue
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        parts.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The job summary (Markdown)

_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]|~"})


def cell(text: str, limit: int = CELL_CHARS) -> str:
    """``text`` as one Markdown table cell: on one line, cut to ``limit`` characters, HTML and
    Markdown punctuation escaped (a document renders as its text, never as markup)."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return html.escape(flat.translate(_MARKDOWN), quote=False)


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else cell(str(value))


def _source(record: Mapping[str, Any]) -> str:
    source = record.get("source")
    if isinstance(source, dict) and source.get("file") is not None:
        return cell(f"{source['file']}:{source.get('line', '')}".rstrip(":"))
    if record.get("path") is not None:
        return cell(f"{record['path']}:{record.get('line', '')}".rstrip(":"))
    return ""


def _rank_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    with_id = any("id" in record for record in records)
    with_source = any(_source(record) for record in records)
    head = ["#", "score", *(["id"] if with_id else []), "document"]
    head += ["source"] if with_source else []
    rows = ["| " + " | ".join(head) + " |", "|" + "|".join(_align(name) for name in head) + "|"]
    for record in records:
        row = [str(record.get("rank", "")), _score(record.get("score"))]
        row += [cell(str(record.get("id", "")))] if with_id else []
        row.append(cell(str(record.get("text", ""))))
        row += [_source(record)] if with_source else []
        rows.append("| " + " | ".join(row) + " |")
    return rows


def _files_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = ["| # | score | path | lines | best chunk |", "|--:|--:|---|--:|---|"]
    for record in records:
        found = record.get("best")
        best: Mapping[str, Any] = found if isinstance(found, dict) else {}
        lines = f"{best.get('start_line', '')}–{best.get('end_line', '')}" if best else ""
        rows.append(
            f"| {record.get('rank', '')} | {_score(record.get('score'))} "
            f"| {cell(str(record.get('path', '')))} | {lines} "
            f"| {cell(str(best.get('text', '')), 160)} |"
        )
    return rows


def _align(name: str) -> str:
    return "--:" if name in {"#", "score"} else "---"


_METRICS = (("ndcg", "nDCG"), ("mrr", "MRR"), ("recall", "Recall"), ("p", "P"))


def _eval_tables(report: Mapping[str, Any]) -> list[str]:
    metrics = report.get("metrics", {})
    at = [k for k in report.get("at", []) if isinstance(k, int)]
    rows = ["| metric | " + " | ".join(f"@{k}" for k in at) + " |", "|---|" + "--:|" * len(at)]
    for key, label in _METRICS:
        values = [_score(metrics.get(f"{key}@{k}", "")) for k in at]
        rows.append(f"| {label} | " + " | ".join(values) + " |")
    if "map" in metrics:
        rows += ["", f"MAP: {_score(metrics['map'])}"]
    rows += [
        "",
        f"Queries averaged over: {report.get('queries', 0)}; judged but not in the run: "
        f"{report.get('not_in_run', 0)}; in the run but not judged: "
        f"{report.get('not_in_qrels', 0)}.",
    ]
    baseline = report.get("baseline")
    if isinstance(baseline, dict) and isinstance(baseline.get("metrics"), dict):
        rows += ["", "| metric | run | baseline | delta | p |", "|---|--:|--:|--:|--:|"]
        for name, figures in baseline["metrics"].items():
            if isinstance(figures, dict):
                values = [_score(figures.get(part)) for part in ("run", "baseline", "delta", "p")]
                rows.append(f"| {cell(name)} | " + " | ".join(values) + " |")
    return rows


def _gate(mode: str, inputs: Inputs, outcome: Outcome) -> str | None:
    if mode == "eval" and inputs.min_ndcg:
        key = ndcg_key(outcome.report or {})
        value = (outcome.report or {}).get("metrics", {}).get(key) if key else None
        figure = f"{key} {value:.4f}" if isinstance(value, (int, float)) else "nDCG"
        if outcome.code == OK:
            return f"Gate passed: {figure} ≥ min-ndcg {cell(inputs.min_ndcg)}."
        if outcome.code == NOTHING and value is not None:
            return f"**Gate failed**: {figure} is below min-ndcg {cell(inputs.min_ndcg)}."
    if mode != "eval" and inputs.min_score:
        if outcome.code == OK:
            return (
                f"Gate passed: {len(outcome.records)} scored at least min-score "
                f"{cell(inputs.min_score)}."
            )
        if outcome.code == NOTHING:
            return f"**Gate failed**: nothing scored at least min-score {cell(inputs.min_score)}."
    return None


def summary(plan_: Plan | None, inputs: Inputs, outcome: Outcome) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: what ran, the top results (or the
    eval metrics), a gate's verdict, and on failure the exit code and rerank's last messages."""
    mode = plan_.mode if plan_ else ""
    lines = [f"### rerank {mode}".rstrip(), ""]
    if inputs.query and mode != "eval":
        lines += [f"**Query:** {cell(inputs.query, 1000)}", ""]
    if mode == "eval" and outcome.report is not None:
        lines += [*_eval_tables(outcome.report), ""]
    elif outcome.records:
        limit = min(int(inputs.top_k), MAX_ROWS) if inputs.top_k.isdigit() else SUMMARY_ROWS
        shown = outcome.records[: max(limit, 1)]
        noun = "files" if mode == "files" else "results"
        more = len(outcome.records) - len(shown)
        lines.append(
            f"{len(outcome.records)} {noun}" + (f"; the top {len(shown)}:" if more else ":")
        )
        lines += ["", *(_files_table(shown) if mode == "files" else _rank_table(shown))]
        if more:
            lines += ["", f"… and {more} more in the results file (output `results-file`)."]
        lines.append("")
    gate = _gate(mode, inputs, outcome) if plan_ else None
    if gate:
        lines += [gate, ""]
    if outcome.code != OK:
        meaning = MEANING.get(outcome.code, "unexpected exit code")
        lines += [f"**Failed: exit {outcome.code}** ({meaning}).", ""]
        if outcome.messages:
            quoted = html.escape("\n".join(outcome.messages[-STDERR_LINES:]), quote=False)
            lines += [f"<pre>{quoted}</pre>", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The step


def annotation(message: str) -> str:
    """A ``::error`` workflow command: shown on the run's page, escaped as the runner reads it."""
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error title=rerank::{escaped}"


def run_rerank(argv: Sequence[str], results: Path, log: Any) -> tuple[int, list[str]]:
    """Run ``python -m rerank_cli ARGV`` with stdout to ``results``, its stderr copied line by
    line to ``log`` with workflow commands off (a message quoting input cannot issue one)."""
    token = uuid.uuid4().hex
    print(f"::stop-commands::{token}", file=log, flush=True)
    print("$ rerank " + shlex.join(argv), file=log, flush=True)
    messages = []
    with results.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rerank_cli", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
        assert process.stderr is not None
        for line in process.stderr:
            print(line, end="", file=log, flush=True)
            messages.append(line.rstrip("\n"))
        code = process.wait()
    print(f"::{token}::", file=log, flush=True)
    return code, messages


def main(env: Mapping[str, str] = os.environ) -> int:
    log = sys.stdout  # one stream, so that stop-commands and what it guards stay in order
    if hasattr(log, "reconfigure"):
        log.reconfigure(encoding="utf-8", errors="replace")
    inputs = Inputs.from_env(env)
    temp = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir())
    plan_: Plan | None = None
    try:
        plan_ = plan(inputs, Path.cwd())
    except InputError as error:
        outcome = Outcome(USAGE, [], None, [f"rerank action: {error}"])
        results_file = ""
    else:
        suffix = "json" if plan_.mode == "eval" else "jsonl"
        results = temp / f"rerank-{plan_.mode}-{uuid.uuid4().hex[:12]}.{suffix}"
        code, messages = run_rerank(plan_.argv, results, log)
        outcome = read_results(plan_.mode, results.read_bytes(), code, messages)
        results_file = str(results)
    if outcome.code != OK:
        last = outcome.messages[-1] if outcome.messages else ""
        meaning = MEANING.get(outcome.code, "unexpected exit code")
        print(annotation(f"exit {outcome.code} ({meaning}): {last}".rstrip(": ")), file=log)
    mode = plan_.mode if plan_ else "rank"
    _append(env.get("GITHUB_STEP_SUMMARY"), summary(plan_, inputs, outcome))
    _append(env.get("GITHUB_OUTPUT"), output_text(outputs(mode, outcome, results_file)))
    return outcome.code


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8", newline="\n") as file:
            file.write(text)


if __name__ == "__main__":
    sys.exit(main())
