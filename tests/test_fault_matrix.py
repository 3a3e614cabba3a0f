"""The fault matrix: one test per row of the README's table (between the ``fault-matrix``
markers), each ranking 2,000 documents at ``-j 8`` through the real entry point against the
loopback server with that fault scripted. The table is the specification: a row without a
set-up here, or a set-up without a row, fails.

A row with exit 0 must print exactly what a run without the fault prints; any other exit must
print nothing on stdout, and stderr's error line must hold the row's message. ``--partial``
is checked on every row that fails: what was scored, ranked as the fault-free run ranks it,
then the rest marked unscored."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from rerank_cli.cli import main
from rerank_cli.terminal import Environment
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"

QUERY = "capital of France"
WORDS = [
    "Paris",
    "France",
    "capital",
    "city",
    "river",
    "Seine",
    "bananas",
    "yellow",
    "fruit",
    "market",
    "of",
    "the",
    "a",
]
COUNT = 2000
BATCH = 50  # every request holds 50 documents: the messages that count them are fixed
OPTIONS = ("-j", "8", "--batch-size", str(BATCH))


def corpus() -> bytes:
    """2,000 distinct lines, a few words each from a small vocabulary: overlaps with the query
    vary, and the server's tie-breaker makes scores distinct."""
    lines = []
    for number in range(COUNT):
        picked = [WORDS[(number * 7 + k * k * 3 + number // 13) % len(WORDS)] for k in range(5)]
        lines.append(f"{number}: {' '.join(picked)}\n")
    return "".join(lines).encode()


DOCUMENTS = corpus()


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    fault: str
    does: str
    exit: int
    messages: tuple[str, ...]  # each code span of the message cell, in order; () for "—"


def matrix(text: str) -> list[Row]:
    """The rows of the markdown table between the markers: ``fault | what rerank does | exit |
    message``."""
    assert text.count(START) == 1 and text.count(END) == 1, "fault-matrix markers missing"
    table = text.split(START, 1)[1].split(END, 1)[0].strip().splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["fault", "what rerank does", "exit", "message"], header
    assert set(table[1].replace("|", "").strip()) <= set("-: "), table[1]
    rows = []
    for line in table[2:]:
        # A pipe inside a code span is not a column break (none are needed today).
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        fault, does, code, message = cells
        spans = tuple(re.findall(r"`([^`]+)`", message))
        assert spans or message == "—", f"{fault}: the message is code spans or —"
        rows.append(Row(fault, does, int(code), spans))
    return rows


ROWS = matrix(README.read_text(encoding="utf-8"))


# --- the set-ups: one per row, keyed by the fault column -----------------------------------------


@dataclass
class Arranged:
    """Options to add to the command line, and a check of the server after the run."""

    options: list[str] = field(default_factory=list)
    check: Callable[[RerankServer], None] | None = None


Setup = Callable[[RerankServer], Arranged]
FAST = {"retry-after-ms": "1"}
ALWAYS = 1000  # more faults than a run makes requests: every attempt meets one
PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Sign in</title></head>"
    b"<body><form action=/login method=post><input name=user></form></body></html>"
)


def faults(*queued: Fault, options: tuple[str, ...] = ()) -> Setup:
    def arrange(server: RerankServer) -> Arranged:
        server.add_faults(*queued)
        return Arranged(list(options))

    return arrange


def too_many(status: int) -> Setup:
    """Every request over 30 documents is refused with ``status`` and "too many documents"."""

    def arrange(server: RerankServer) -> Arranged:
        server.max_documents, server.too_many_status = 30, status

        def check(server: RerankServer) -> None:
            sizes = [len(r.documents) for r in server.rerank_requests]
            assert BATCH in sizes and max(s for s in sizes if s != BATCH) <= 30  # split

        return Arranged(check=check)

    return arrange


def single_too_large(server: RerankServer) -> Arranged:
    server.max_documents = 0  # not even one document is taken

    def check(server: RerankServer) -> None:
        assert 1 in [len(r.documents) for r in server.rerank_requests]  # split down to one

    return Arranged(check=check)


def cold(wait: bool) -> Setup:
    def arrange(server: RerankServer) -> Arranged:
        server.make_cold(2.0)

        def check(server: RerankServer) -> None:
            expected = 30 if wait else None  # the default --wait-cold, or none sent
            assert {r.prefer_wait for r in server.rerank_requests} == {expected}

        return Arranged([] if wait else ["--wait-cold", "0"], check)

    return arrange


def rewritten(rewrite: Callable[[list[dict[str, Any]]], Any]) -> Setup:
    return faults(Fault.rewritten(rewrite))


def infinite(results: list[dict[str, Any]]) -> Any:
    first, *rest = results
    return {"results": [{**first, "relevance_score": float("inf")}, *rest]}


def burst(status: int) -> Setup:
    return faults(*[Fault.error(status)] * 5)


SETUPS: dict[str, Setup] = {
    "400 bad request": faults(Fault.error(400, "query is too long")),
    '400 "too many documents"': too_many(400),
    "401 key rejected": faults(Fault.error(401, "invalid API key")),
    "402 out of credit": faults(Fault.error(402, "insufficient credit")),
    "403 forbidden": faults(Fault.error(403, "not allowed from this region")),
    "404 model not served": faults(Fault.error(404, "model not found")),
    "413 payload too large": too_many(413),
    "413 for a single document": single_too_large,
    "422 unprocessable": faults(Fault.error(422, "query: field required")),
    "429 with Retry-After: 1": faults(
        Fault.error(429, "rate limited", headers={"Retry-After": "1"})
    ),
    "429 with retry-after-ms: 300": faults(
        Fault.error(429, "rate limited", headers={"retry-after-ms": "300"})
    ),
    "429 with retry_after_s: 0.4 in the body": faults(
        Fault.error(429, "rate limited", retry_after_s=0.4)
    ),
    "429 on every attempt": faults(*[Fault.error(429, "rate limited", headers=FAST)] * ALWAYS),
    "503 cold model, Prefer: wait": cold(wait=True),
    "503 cold model, --wait-cold 0": cold(wait=False),
    "500 burst": burst(500),
    "502 burst": burst(502),
    "504 burst": burst(504),
    "500 on every attempt (--max-retries 1)": faults(
        *[Fault.error(500)] * ALWAYS, options=("--max-retries", "1")
    ),
    "connection reset": faults(*[Fault.reset_connection()] * 3),
    "connection closed without an answer": faults(*[Fault.dropped()] * 3),
    "read timeout (--timeout 0.5)": faults(
        Fault.slow(5.0), options=("--timeout", "0.5", "--wait-cold", "0")
    ),
    "read timeout on every attempt (--timeout 0.3 --max-retries 1)": faults(
        *[Fault.slow(5.0)] * ALWAYS,
        options=("--timeout", "0.3", "--wait-cold", "0", "--max-retries", "1"),
    ),
    "truncated body": faults(*[Fault.truncated()] * 2),
    "truncated JSON": faults(Fault.malformed()),
    "HTML error page from a proxy": faults(
        *[Fault.error(502, body=PROXY_PAGE, headers={"Content-Type": "text/html"})] * 3
    ),
    "HTML error page on every attempt (--max-retries 1)": faults(
        *[Fault.error(502, body=PROXY_PAGE, headers={"Content-Type": "text/html"})] * ALWAYS,
        options=("--max-retries", "1"),
    ),
    "HTML page with status 200": faults(
        Fault(body=LOGIN_PAGE, headers={"Content-Type": "text/html"})
    ),
    "missing index": faults(Fault.missing_index()),
    "duplicate index": faults(Fault.duplicate_index()),
    "index out of range": faults(Fault.index_out_of_range()),
    "NaN score": faults(Fault.nan_score()),
    "infinite score": rewritten(infinite),
    "fewer results than documents": faults(Fault.fewer_results()),
}


# --- running the command -------------------------------------------------------------------------


@dataclass
class Ran:
    exit_code: int
    stdout: bytes
    stderr: str

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stdout.splitlines()]

    def error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("rerank: error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]


def rank(server: RerankServer, home: Path, *options: str) -> Ran:
    """``rerank QUERY`` over the 2,000 documents on stdin (so each record has a source), in a
    home of its own (no config, an empty score cache)."""
    environment = Environment(
        stdin=io.BytesIO(DOCUMENTS),
        stdout=io.BytesIO(),
        stderr=io.StringIO(),
        env={
            "RERANK_CONFIG_DIR": str(home / "config"),
            "RERANK_CACHE_DIR": str(home / "cache"),
            "GR_KEY": TEST_KEY,
        },
    )
    code = main([QUERY, "--base-url", server.base_url, *OPTIONS, *options], environment)
    stdout = environment.stdout.getvalue()  # type: ignore[attr-defined]
    return Ran(code, stdout, environment.stderr.getvalue())  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The fault-free run's output."""
    with RerankServer(api_key=TEST_KEY) as server:
        ran = rank(server, tmp_path_factory.mktemp("reference"))
    assert ran.exit_code == 0, ran.stderr
    assert ran.stderr == ""
    assert len(ran.records()) == COUNT
    return ran.stdout


@pytest.fixture
def server() -> Iterator[RerankServer]:
    with RerankServer(api_key=TEST_KEY) as running:
        yield running


def in_order(text: str, parts: tuple[str, ...]) -> bool:
    at = 0
    for part in parts:
        found = text.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


def expected(row: Row, server: RerankServer) -> tuple[str, ...]:
    host = f"127.0.0.1:{server.port}"
    return tuple(message.replace("HOST", host) for message in row.messages)


# --- the tests -----------------------------------------------------------------------------------


def test_every_row_has_a_set_up_and_every_set_up_a_row() -> None:
    faults = [row.fault for row in ROWS]
    assert len(faults) == len(set(faults)), "a fault named twice in the README's table"
    assert sorted(set(faults) - set(SETUPS)) == [], "rows without a set-up"
    assert sorted(set(SETUPS) - set(faults)) == [], "set-ups without a row"


def test_the_table_is_read_as_written() -> None:
    rows = matrix(
        f"x\n{START}\n| fault | what rerank does | exit | message |\n|---|---|---|---|\n"
        "| a | retries | 0 | — |\n| b | stops | 4 | `one` … `two` |\n"
        f"{END}\ny"
    )
    assert rows == [Row("a", "retries", 0, ()), Row("b", "stops", 4, ("one", "two"))]
    with pytest.raises(AssertionError):
        matrix(f"{START}\n| fault | exit |\n|---|---|\n| a | 0 |\n{END}")


@pytest.mark.parametrize("row", ROWS, ids=[row.fault for row in ROWS])
def test_fault(row: Row, reference: bytes, server: RerankServer, tmp_path: Path) -> None:
    arranged = SETUPS[row.fault](server)
    ran = rank(server, tmp_path, *arranged.options)
    messages = expected(row, server)
    assert ran.exit_code == row.exit, ran.stderr
    if row.exit == 0:
        assert ran.stdout == reference  # the complete ranking, byte for byte
        assert "error" not in ran.stderr
        if messages:
            assert in_order(ran.stderr, messages), ran.stderr
        else:
            assert ran.stderr == ""
        assert not server.faults, "a scripted fault was never met"
    else:
        assert ran.stdout == b""  # a failed run prints no results
        assert in_order(ran.error_line(), messages), ran.error_line()
        assert "Traceback" not in ran.stderr
        assert TEST_KEY not in ran.stderr
    if arranged.check is not None:
        arranged.check(server)


FAILING = [row for row in ROWS if row.exit != 0]


@pytest.mark.parametrize("row", FAILING, ids=[row.fault for row in FAILING])
def test_partial_shows_what_was_scored_then_the_rest_unscored(
    row: Row, reference: bytes, server: RerankServer, tmp_path: Path
) -> None:
    """``--partial``: the documents scored before the failure, in the order (and with the
    scores) of the fault-free run, then every other one in input order, ``"score": null`` and
    ``"unscored": true``; the exit code and the error are the failure's."""
    arranged = SETUPS[row.fault](server)
    ran = rank(server, tmp_path, *arranged.options, "--partial")
    assert ran.exit_code == row.exit, ran.stderr
    assert in_order(ran.error_line(), expected(row, server))
    records = ran.records()
    assert sorted(r["index"] for r in records) == list(range(COUNT))  # each document once
    scored = [r for r in records if r["score"] is not None]
    unscored = records[len(scored) :]
    assert all("unscored" not in r for r in scored)
    assert all(r["unscored"] is True and r["rank"] is None for r in unscored)
    assert [r["index"] for r in unscored] == sorted(r["index"] for r in unscored)
    # The scored ones: the fault-free ranking with the others taken out, renumbered.
    full = [orjson.loads(line) for line in reference.splitlines()]
    taken = {r["index"] for r in scored}
    kept = [r for r in full if r["index"] in taken]
    assert scored == [{**r, "rank": n} for n, r in enumerate(kept, 1)]
    assert f"--partial: {len(scored):,} of {COUNT:,} documents scored" in ran.stderr


def test_partial_in_every_format(server: RerankServer, tmp_path: Path) -> None:
    """Three batches answered, then a refusal (-j 1): 150 documents scored. Plain output has
    no place for a mark: it prints the scored records only. TSV leaves the score field empty;
    the table says ``unscored`` in the score column, with no rank."""
    queued = [*[Fault()] * 3, Fault.error(400, "query is too long")]
    lines = DOCUMENTS.splitlines(keepends=True)
    for fmt in ("jsonl", "plain", "tsv", "table"):
        server.add_faults(*queued)
        before = len(server.rerank_requests)
        ran = rank(server, tmp_path / fmt, "--partial", "-o", fmt, "-j", "1")
        assert ran.exit_code == 3, ran.stderr
        assert len(server.rerank_requests) - before == 4  # -j 1: three answered, one refused
        scored = 3 * BATCH
        out = ran.stdout.decode().splitlines(keepends=True)
        if fmt == "jsonl":
            records = [orjson.loads(line) for line in out]
            assert [r["rank"] for r in records[:scored]] == list(range(1, scored + 1))
            assert all(r.get("unscored") is True for r in records[scored:])
        elif fmt == "plain":
            assert len(out) == scored and set(out) <= set(map(bytes.decode, lines))
            assert "the other 1,850 left out of plain output" in ran.stderr
        elif fmt == "tsv":
            assert len(out) == COUNT
            assert all(not line.startswith("\t") for line in out[:scored])
            assert all(line.startswith("\t") for line in out[scored:])
        else:
            rows = out[1:]  # a header, then a row per document
            assert len(rows) == COUNT
            # No rank (the column is 3 wide: 150 ranks), "unscored" for a score.
            assert all(row[:3] == "   " and row.split()[0] == "unscored" for row in rows[scored:])
            assert all(row.split()[0].isdigit() for row in rows[:scored])


def test_without_partial_a_failure_part_way_prints_nothing(
    server: RerankServer, tmp_path: Path
) -> None:
    server.add_faults(*[Fault()] * 3, Fault.error(400, "query is too long"))
    ran = rank(server, tmp_path, "-j", "1")
    assert (ran.exit_code, ran.stdout) == (3, b"")
    assert server.billed_documents == 3 * BATCH  # scored, paid for, and still not shown
    assert "--partial" not in ran.stderr


def test_files_partial(server: RerankServer, tmp_path: Path) -> None:
    """``rerank files --partial``: the files scored before the failure, ranked as a fault-free
    run ranks them, then the others with ``null`` rank, score and best chunk."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for number in range(30):
        words = [WORDS[(number * k + 3) % len(WORDS)] for k in range(1, 7)]
        (tree / f"f{number:02}.txt").write_text(f"{number} {' '.join(words)}\n")

    def files(*options: str) -> Ran:
        environment = Environment(
            stdin=io.BytesIO(),
            stdout=io.BytesIO(),
            stderr=io.StringIO(),
            env={"RERANK_CACHE_DIR": str(tmp_path / "cache"), "GR_KEY": TEST_KEY},
        )
        args = ["files", QUERY, str(tree), "--base-url", server.base_url, "--no-cache"]
        code = main([*args, "--batch-size", "5", "-j", "1", *options], environment)
        stdout = environment.stdout.getvalue()  # type: ignore[attr-defined]
        return Ran(code, stdout, environment.stderr.getvalue())  # type: ignore[attr-defined]

    whole = files()
    assert whole.exit_code == 0, whole.stderr
    server.add_faults(Fault(), Fault(), Fault.error(400, "query is too long"))
    ran = files("--partial")
    assert ran.exit_code == 3, ran.stderr
    records = ran.records()
    assert len(records) == 30
    scored, unscored = records[:10], records[10:]
    paths = {r["path"] for r in scored}
    kept = [r for r in whole.records() if r["path"] in paths]
    assert scored == [{**r, "rank": n} for n, r in enumerate(kept, 1)]
    assert all(r["score"] is None and r["best"] is None and r["unscored"] for r in unscored)
    assert [r["path"] for r in unscored] == sorted(r["path"] for r in unscored)
    assert "--partial: 10 of 30 documents scored" in ran.stderr


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (PROXY_PAGE, "502 Bad Gateway"),
        (LOGIN_PAGE, "Sign in"),
        (b"<!-- cf -->\n<html><body><h1>Access &amp; denied</h1></body></html>", "Access & denied"),
        (b"  <HTML><BODY>Service   <b>unavailable</b></BODY></HTML>", "Service unavailable"),
        (b"<html></html>", "(no title)"),
        (b'{"error": {"message": "<html> in a JSON message"}}', None),
        (b"<?xml version='1.0'?><error/>", None),
        (b"upstream connect error", None),
    ],
)
def test_an_html_page_is_said_by_its_title(body: bytes, said: str | None) -> None:
    from rerank_cli.engines.api.protocol import error_message, html_page

    assert html_page(body) == said
    if said is not None:
        assert error_message(body) == f"an HTML page: {said}"
