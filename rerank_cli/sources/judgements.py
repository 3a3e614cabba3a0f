"""``rerank eval``'s inputs: relevance judgements (qrels) and runs to judge.

Qrels: TREC (``qid 0 docid rel``, four fields) or BEIR TSV (``query-id corpus-id score``, three
fields, a header line first) — told apart by the first line's number of fields. Runs: a TREC run
(``qid Q0 docid rank score tag``) or ``rerank batch``'s JSON lines
(``{"id","results":[{"rank","score","index","id"?}]}``) — told apart by a first line that opens
with ``{``. Fields are separated by any whitespace. The first invalid line is ``F:N: …`` (exit 2);
nothing is skipped silently.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from rerank_cli.errors import InputError
from rerank_cli.sources.records import ReadReport, chomp, split_lines, strip_bom
from rerank_cli.words import plural

_INTEGER = re.compile(r"[+-]?[0-9]+")
TREC_QRELS = "TREC qrels (qid 0 docid rel)"
BEIR_QRELS = "BEIR qrels (query-id corpus-id score, after a header)"


def _lines(data: bytes, name: str, report: ReadReport) -> list[tuple[int, str]]:
    """The non-blank lines, numbered from 1, decoded."""
    lines = []
    for number, raw in split_lines(strip_bom(data)):
        text = report.decode(chomp(raw), name)
        if text.strip():
            lines.append((number, text))
    return lines


def read_qrels(data: bytes, name: str, report: ReadReport) -> dict[str, dict[str, int]]:
    """query id → docid → relevance, in file order. A document judged twice the same way is
    one judgement; judged twice differently, an error."""
    lines = _lines(data, name, report)
    if not lines:
        raise InputError("no judgements (an empty qrels file)", name)
    first = lines[0][1].split()
    if len(first) == 4:
        fields, kind = 4, TREC_QRELS
    elif len(first) == 3:
        fields, kind = 3, BEIR_QRELS
        if not _INTEGER.fullmatch(first[2]):  # the header: query-id corpus-id score
            lines = lines[1:]
    else:
        raise InputError(
            f"not a qrels line: expected 'qid 0 docid rel' (TREC, 4 fields) or "
            f"'query-id corpus-id score' (BEIR, 3 fields), got {len(first)} "
            f"field{'s' if len(first) != 1 else ''}",
            name,
            lines[0][0],
        )
    qrels: dict[str, dict[str, int]] = {}
    for number, text in lines:
        parts = text.split()
        if len(parts) != fields:
            raise InputError(
                f"expected {fields} fields as in {kind}, got {len(parts)}", name, number
            )
        qid, docid, rel = (parts[0], parts[2], parts[3]) if fields == 4 else parts
        if not _INTEGER.fullmatch(rel):
            raise InputError(f"relevance must be a whole number, got {rel!r}", name, number)
        judged = qrels.setdefault(qid, {})
        value = int(rel)
        if judged.get(docid, value) != value:
            raise InputError(
                f"{docid!r} judged twice for query {qid!r} ({judged[docid]}, then {value})",
                name,
                number,
            )
        judged[docid] = value
    if not qrels:
        raise InputError("no judgements (only a header line)", name)
    return qrels


# (query id, docid) → the line of the run that names the pair
Where = dict[tuple[str, str], int]


def read_run(
    data: bytes, name: str, report: ReadReport, where: Where | None = None
) -> dict[str, dict[str, float]]:
    """query id → docid → score, in file order. Ranks written in the run are ignored: the
    metrics order by score, as trec_eval does. ``where`` gets each pair's line number."""
    lines = _lines(data, name, report)
    if not lines:
        raise InputError("no ranked query (an empty run)", name)
    if lines[0][1].lstrip().startswith("{"):
        return _batch_run(lines, name, report, where)
    return _trec_run(lines, name, where)


def _trec_run(
    lines: list[tuple[int, str]], name: str, where: Where | None
) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for number, text in lines:
        parts = text.split()
        if len(parts) != 6:
            raise InputError(
                f"not a TREC run line: expected 'qid Q0 docid rank score tag' (6 fields), "
                f"got {len(parts)}",
                name,
                number,
            )
        qid, _, docid, _, score_text, _ = parts
        try:
            score = float(score_text)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise InputError(f"the score must be a finite number, got {score_text!r}", name, number)
        _add(run.setdefault(qid, {}), qid, docid, score, name, number, where)
    return run


def _add(
    scores: dict[str, float],
    qid: str,
    docid: str,
    score: float,
    name: str,
    number: int,
    where: Where | None,
) -> None:
    if docid in scores:  # trec_eval refuses a run that ranks a document twice, too
        raise InputError(f"{docid!r} ranked twice for query {qid!r}", name, number)
    scores[docid] = score
    if where is not None:
        where[qid, docid] = number


def run_id(value: Any) -> str:
    """An id as a TREC run holds it, as ``rerank batch -o trec`` writes it: a string as is, a
    number as written in JSON (``7``)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _batch_run(
    lines: list[tuple[int, str]], name: str, report: ReadReport, where: Where | None
) -> dict[str, dict[str, float]]:
    """``rerank batch`` output. A result's docid is its ``id`` (``--id-field``), else its
    ``index`` (its position in the query's documents, from 0). Error lines (a query that
    failed) are left out, with one warning saying how many."""
    run: dict[str, dict[str, float]] = {}
    failed = 0
    for number, text in lines:
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            reason = str(error).split(":", 1)[0]
            raise InputError(f"invalid JSON ({reason})", name, number) from None
        if not isinstance(line, dict) or "id" not in line:
            raise InputError('expected a rerank batch line: {"id", "results": […]}', name, number)
        if "error" in line and "results" not in line:
            failed += 1
            continue
        results = line.get("results")
        if not isinstance(results, list):
            raise InputError('"results" must be a list', name, number)
        qid = run_id(line["id"])
        if qid in run:
            raise InputError(f"query {qid!r} appears twice", name, number)
        scores = run[qid] = {}
        with_id = [isinstance(r, dict) and "id" in r for r in results]
        if any(with_id) and not all(with_id):
            raise InputError(
                "some results have an 'id' and some do not: cannot name the documents "
                "(rank with --id-field on documents that all have one)",
                name,
                number,
            )
        for position, result in enumerate(results, 1):
            if not isinstance(result, dict):
                raise InputError(f"result {position} is not an object", name, number)
            score = result.get("score")
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise InputError(f"result {position} has no numeric 'score'", name, number)
            if not math.isfinite(score):
                raise InputError(f"result {position}'s score is not finite", name, number)
            key = "id" if "id" in result else "index"
            if key not in result or result[key] is None:
                raise InputError(f"result {position} has neither 'id' nor 'index'", name, number)
            _add(scores, qid, run_id(result[key]), float(score), name, number, where)
    if failed:
        report.warn(
            f"{name}: {plural(failed, 'query')} failed in the batch run "
            "(error lines): not evaluated"
        )
    return run
