"""Never pay twice, proved against the loopback server's billing (the documents it scored):
the score cache and in-run dedup through the real entry point, for ``rerank`` and
``rerank files``; an interrupted process and two processes at once; a broken cache."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path

import orjson
import pytest

from rerank_cli.settings.resolution import resolve
from rerank_cli.store.score_cache import DAY, FILE_NAME, Scope, ScoreCache, make_keys, question_id
from tests.conftest import TEST_KEY, CliResult, RunCli, api_options
from tests.server import Fault, RerankServer, score

ROOT = Path(__file__).resolve().parent.parent
QUERY = "capital of France"
OTHER_MODEL = "BAAI/bge-reranker-base"
SENTINEL = 0.123456  # a score only the cache can give: the server's never equals it
DOCS = [f"Paris is the capital of France, fact {i}" for i in range(7)] + [
    f"Bananas are yellow, fact {i}" for i in range(5)
]


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def db_path(isolated_env: dict[str, str]) -> Path:
    return Path(isolated_env["RERANK_CACHE_DIR"]) / FILE_NAME


def lines(texts: Sequence[str]) -> bytes:
    return "".join(f"{text}\n" for text in texts).encode()


def sent(server: RerankServer) -> list[str]:
    """Every document the server was sent, in arrival order."""
    return [text for request in server.rerank_requests for text in request.documents]


def check_scores(result: CliResult, texts: Sequence[str], query: str = QUERY) -> None:
    """Exit 0, one record per input text (duplicates included), each with the server's score."""
    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert sorted(r["index"] for r in records) == list(range(len(texts)))
    for record in records:
        assert record["text"] == texts[record["index"]]
        assert record["score"] == score(query, record["text"])


def scope(server: RerankServer) -> Scope:
    """The cache scope of a default run against ``server``, resolved as the CLI does."""
    return Scope.for_settings(resolve({"base_url": server.base_url}, {}, {}))


def seed(
    db_path: Path,
    server: RerankServer,
    texts: Sequence[str],
    value: float = SENTINEL,
    age_days: float = 0.0,
) -> None:
    """Store ``value`` for ``texts`` under the key a run against ``server`` would use."""
    stamp = time.time() - age_days * DAY
    store = ScoreCache.open(db_path, pytest.fail, clock=lambda: stamp)
    assert store is not None
    with store:
        store.store(
            make_keys(scope(server), QUERY, texts),
            [value] * len(texts),
            question_id(scope(server), QUERY),
        )


def cached_scores(db_path: Path, server: RerankServer, texts: Sequence[str]) -> list[float | None]:
    store = ScoreCache.open(db_path, pytest.fail)
    assert store is not None
    with store:
        return store.lookup(make_keys(scope(server), QUERY, texts))


def entries(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path, timeout=5)) as conn:
        return int(conn.execute("SELECT count(*) FROM scores").fetchone()[0])


def stored_so_far(db_path: Path) -> int:
    """The entries of a cache another process may still be creating (-1: not there yet)."""
    try:
        return entries(db_path) if db_path.exists() else -1
    except sqlite3.OperationalError:  # no table yet, or locked past the timeout
        return -1


def warnings_in(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("rerank: warning:")]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail (not hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# --- the cache and dedup, in process -------------------------------------------------------------


def test_first_run_bills_each_unique_document_once_and_a_rerun_nothing(
    api_cli: RunCli, server: RerankServer
) -> None:
    texts = [*DOCS, DOCS[0], DOCS[3], DOCS[0], DOCS[11]]  # 12 unique, 16 records
    first = api_cli(QUERY, "--batch-size", "5", stdin=lines(texts))
    check_scores(first, texts)
    assert server.billed_documents == len(DOCS)
    assert sorted(sent(server)) == sorted(DOCS)  # each unique text sent exactly once
    requests = len(server.requests)

    again = api_cli(QUERY, "--batch-size", "5", stdin=lines(texts))
    check_scores(again, texts)
    assert again.stdout == first.stdout
    assert server.billed_documents == len(DOCS)
    assert len(server.requests) == requests  # no /rerank, and no other request either


def test_cache_stats_show_the_last_runs_hits_and_misses(
    api_cli: RunCli, cli: RunCli, server: RerankServer
) -> None:
    assert api_cli(QUERY, *DOCS[:4]).exit_code == 0
    assert api_cli(QUERY, *DOCS, DOCS[0]).exit_code == 0
    stats = orjson.loads(cli("cache", "stats", "--json").stdout)
    assert stats["entries"] == len(DOCS)
    last = stats["last_run"]
    assert (last["hits"], last["misses"], last["sent"]) == (4, 8, 8)
    assert server.billed_documents == 4 + 8


def test_duplicate_records_keep_their_ids_and_share_one_billed_score(
    api_cli: RunCli, server: RerankServer
) -> None:
    records = [
        {"id": "a", "text": DOCS[0]},
        {"id": "b", "text": DOCS[8]},
        {"id": "c", "text": DOCS[0]},
        {"id": "d", "text": DOCS[0]},
    ]
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in records)
    result = api_cli(QUERY, "--id-field", "id", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    got = {r["id"]: r["score"] for r in result.records()}
    assert got == {r["id"]: score(QUERY, r["text"]) for r in records}
    assert server.billed_documents == 2


CHANGES: dict[str, list[str]] = {
    "nothing": [QUERY, "-I", "Find facts"],
    "query": ["capital of Spain", "-I", "Find facts"],
    "model": [QUERY, "-I", "Find facts", "-m", OTHER_MODEL],
    "instruction": [QUERY, "-I", "Find other facts"],
    "no instruction": [QUERY],
    "instruction mode": [QUERY, "-I", "Find facts", "--instruction-mode", "template"],
    "base URL": [QUERY, "-I", "Find facts"],  # sent to another server
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_query_model_instruction_or_endpoint_misses(
    cli: RunCli, server: RerankServer, change: str
) -> None:
    env = {"GR_KEY": TEST_KEY}
    first = cli(*CHANGES["nothing"], *DOCS, *api_options(server), env=env)
    assert first.exit_code == 0, first.stderr
    assert server.billed_documents == len(DOCS)
    with RerankServer(api_key=TEST_KEY) as other:
        target = other if change == "base URL" else server
        result = cli(*CHANGES[change], *DOCS, *api_options(target), env=env)
        assert result.exit_code == 0, result.stderr
        assert len(result.records()) == len(DOCS)
        billed = server.billed_documents + other.billed_documents
    assert billed == len(DOCS) * (1 if change == "nothing" else 2)
    if change not in ("nothing", "base URL"):  # the request did change as asked
        (before, after) = [r.body for r in (server.rerank_requests + other.rerank_requests)]
        assert before != after


def test_the_api_key_is_not_part_of_the_cache_key(
    cli: RunCli, server: RerankServer, db_path: Path
) -> None:
    server.api_key = None  # any key will do
    first = cli(QUERY, *DOCS, *api_options(server), env={"GR_KEY": "gr-first-key-aaaaaaaa"})
    assert first.exit_code == 0, first.stderr
    second = cli(QUERY, *DOCS, *api_options(server), env={"GR_KEY": "gr-other-key-bbbbbbbb"})
    check_scores(second, DOCS)
    assert server.billed_documents == len(DOCS)
    data = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.is_file())
    assert b"first-key" not in data and b"other-key" not in data


def test_no_cache_neither_reads_nor_writes(
    api_cli: RunCli, server: RerankServer, db_path: Path
) -> None:
    fresh = api_cli(QUERY, *DOCS, "--no-cache")
    check_scores(fresh, DOCS)
    assert not db_path.exists()  # not even created

    seed(db_path, server, DOCS[:4])
    result = api_cli(QUERY, *DOCS, "--no-cache")
    check_scores(result, DOCS)  # the seeded scores were not read
    assert server.billed_documents == 2 * len(DOCS)
    # … and nothing was written: the seeded entries are still the only ones.
    assert entries(db_path) == 4
    assert cached_scores(db_path, server, DOCS) == [SENTINEL] * 4 + [None] * 8


def test_no_cache_from_the_environment_and_the_config(
    api_cli: RunCli, server: RerankServer, db_path: Path, isolated_env: dict[str, str]
) -> None:
    assert api_cli(QUERY, *DOCS, env={"RERANK_CACHE": "off"}).exit_code == 0
    config = Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('cache = "off"\n')
    assert api_cli(QUERY, *DOCS).exit_code == 0
    assert server.billed_documents == 2 * len(DOCS)
    assert not db_path.exists()


def test_refresh_does_not_read_but_writes(
    api_cli: RunCli, server: RerankServer, db_path: Path
) -> None:
    seed(db_path, server, DOCS)
    result = api_cli(QUERY, *DOCS, "--refresh")
    check_scores(result, DOCS)
    assert server.billed_documents == len(DOCS)
    assert cached_scores(db_path, server, DOCS) == [score(QUERY, t) for t in DOCS]

    again = api_cli(QUERY, *DOCS)  # the refreshed scores are read back
    check_scores(again, DOCS)
    assert server.billed_documents == len(DOCS)


def test_without_a_ttl_old_entries_never_expire(
    api_cli: RunCli, server: RerankServer, db_path: Path
) -> None:
    seed(db_path, server, DOCS, age_days=3650)
    result = api_cli(QUERY, *DOCS)
    assert result.exit_code == 0, result.stderr
    assert {r["score"] for r in result.records()} == {SENTINEL}
    assert server.billed_documents == 0


@pytest.mark.parametrize("source", ["option", "environment", "config"])
def test_entries_older_than_the_ttl_are_sent_again(
    api_cli: RunCli,
    server: RerankServer,
    db_path: Path,
    isolated_env: dict[str, str],
    source: str,
) -> None:
    old, recent = DOCS[:5], DOCS[5:]
    seed(db_path, server, old, age_days=3)
    seed(db_path, server, recent, age_days=0.5)
    args: list[str] = []
    env: dict[str, str] = {}
    if source == "option":
        args = ["--cache-ttl", "1"]
    elif source == "environment":
        env = {"RERANK_CACHE_TTL": "1"}
    else:
        config = Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("cache_ttl = 1\n")

    result = api_cli(QUERY, *DOCS, *args, env=env)
    assert result.exit_code == 0, result.stderr
    got = {r["text"]: r["score"] for r in result.records()}
    assert got == {**{t: score(QUERY, t) for t in old}, **{t: SENTINEL for t in recent}}
    assert sorted(sent(server)) == sorted(old)
    # The expired entries were stored afresh: a rerun with the same TTL sends nothing.
    assert api_cli(QUERY, *DOCS, *args, env=env).exit_code == 0
    assert server.billed_documents == len(old)


# --- rerank files --------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def file_text(topic: str, count: int = 100) -> str:
    return "".join(f"{topic} line {n}\n" for n in range(count))


def test_files_bill_each_unique_chunk_once(
    api_cli: RunCli, server: RerankServer, workdir: Path, db_path: Path
) -> None:
    (workdir / "a.txt").write_text(file_text("retries"))
    (workdir / "b.txt").write_text(file_text("retries"))  # the same chunks as a.txt
    (workdir / "c.txt").write_text(file_text("bananas"))
    query = "where are retries configured"

    first = api_cli("files", query, "-o", "jsonl", "--batch-size", "2")
    assert first.exit_code == 0, first.stderr
    assert sorted(r["path"] for r in first.records()) == ["a.txt", "b.txt", "c.txt"]
    billed = server.billed_documents
    assert billed == len(set(sent(server))) == 2 * 2  # 100 lines: chunks 1-60, 51-100
    for record in first.records():
        assert record["score"] == score(query, record["best"]["text"])

    requests = len(server.requests)
    again = api_cli("files", query, "-o", "jsonl")
    assert again.stdout == first.stdout
    assert (server.billed_documents, len(server.requests)) == (billed, requests)

    # One file changes: only its new chunk is paid for.
    (workdir / "c.txt").write_text(file_text("bananas", 60) + file_text("apples", 40))
    edited = api_cli("files", query, "-o", "jsonl")
    assert edited.exit_code == 0, edited.stderr
    assert server.billed_documents == billed + 1

    # --no-cache and --refresh work here too.
    assert api_cli("files", query, "--no-cache").exit_code == 0
    assert server.billed_documents == billed + 1 + 4
    assert api_cli("files", query, "--refresh").exit_code == 0
    assert server.billed_documents == billed + 1 + 4 + 4
    assert entries(db_path) == 5


# --- an interrupted process ----------------------------------------------------------------------


def rerank_process(
    isolated_env: dict[str, str], server: RerankServer, *args: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **isolated_env, "GR_KEY": TEST_KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "rerank_cli", *args, *api_options(server)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.fixture
def killable() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_killed_run_keeps_what_it_paid_for_and_the_rerun_pays_the_rest(
    api_cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    db_path: Path,
    tmp_path: Path,
    killable: list[subprocess.Popen[bytes]],
) -> None:
    unique = [f"document {i} about the capital of France" for i in range(60)]
    texts = unique + unique[::6]  # 70 records
    source = tmp_path / "docs.txt"
    source.write_bytes(lines(texts))
    server.latency = 0.02
    # Four batches are answered; the next two (one per connection) are held before the server
    # scores them, so at the kill nothing is billed that the process did not receive.
    server.add_faults(*[Fault()] * 4, Fault.slow(120), Fault.slow(120))
    options = ("--batch-size", "5", "-j", "2", "-o", "jsonl")

    process = rerank_process(isolated_env, server, QUERY, "-i", str(source), *options)
    killable.append(process)
    wait_for(
        lambda: (
            (len(server.rerank_requests), server.in_flight) == (6, 2) or process.poll() is not None
        ),
        "four answered batches and two held ones",
    )
    # Answers are stored by a writer thread, each as it lands: under load the kill could come
    # before the last commit, and that batch would be paid again (the crash-safety test bounds
    # it). Here the kill waits for the four, to check that every answer is kept.
    wait_for(
        lambda: stored_so_far(db_path) == 20 or process.poll() is not None,
        "the four answered batches stored",
    )
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    paid = server.billed_documents
    assert paid == 4 * 5
    assert entries(db_path) == paid  # every batch answered was stored, and nothing else
    first_paid = set(sent(server)[:paid])

    requests = len(server.rerank_requests)
    rerun = api_cli(QUERY, "-i", str(source), *options)
    check_scores(rerun, texts)
    assert server.billed_documents == len(unique)  # across both runs: nothing paid twice
    resent = [t for r in server.rerank_requests[requests:] for t in r.documents]
    assert sorted(resent) == sorted(set(unique) - first_paid)


# --- two processes at once -----------------------------------------------------------------------


def test_two_processes_at_once_share_the_cache(
    api_cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    db_path: Path,
    tmp_path: Path,
    killable: list[subprocess.Popen[bytes]],
) -> None:
    every = [f"shared document {i}: capital of France" for i in range(450)]
    parts = [every[:300], every[150:]]  # 150 in common
    server.latency = 0.005
    # Each process sends on two connections; no request is answered before all four are in
    # flight together, so the two runs certainly overlap (and so do their cache writes).
    server.hold_until_in_flight(4, timeout=30)
    processes = []
    for number, part in enumerate(parts):
        source = tmp_path / f"part{number}.txt"
        source.write_bytes(lines(part))
        process = rerank_process(
            isolated_env, server, QUERY, "-i", str(source), "--batch-size", "5", "-j", "2"
        )
        killable.append(process)
        processes.append(process)
    for process, part in zip(processes, parts, strict=True):
        out, err = process.communicate(timeout=120)
        result = CliResult(process.returncode, out, err.decode())
        check_scores(result, part)
        assert warnings_in(result) == []
    assert server.max_in_flight >= 4
    # Overlapping documents may be paid by both (they ran at the same time), nothing more.
    assert len(every) <= server.billed_documents <= sum(map(len, parts))
    assert entries(db_path) == len(every)  # no lost write, no duplicate row

    requests, billed = len(server.requests), server.billed_documents
    third = api_cli(QUERY, "--batch-size", "5", stdin=lines(every))
    check_scores(third, every)
    assert (len(server.requests), server.billed_documents) == (requests, billed)


# --- a broken cache ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "overwritten pages"])
def test_a_corrupt_cache_is_set_aside_with_one_warning(
    api_cli: RunCli, server: RerankServer, db_path: Path, damage: str
) -> None:
    if damage == "garbage":
        db_path.parent.mkdir(parents=True)
        db_path.write_bytes(b"this is not a database\n" * 200)
    else:
        filler = [f"filler {i} " + "x" * 200 for i in range(2000)]
        seed(db_path, server, filler)
        with closing(sqlite3.connect(db_path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = bytearray(db_path.read_bytes())
        data[100:] = os.urandom(len(data) - 100)  # keep only the 100-byte file header
        db_path.write_bytes(bytes(data))

    result = api_cli(QUERY, *DOCS)
    check_scores(result, DOCS)
    (warning,) = warnings_in(result)
    assert "corrupt" in warning
    assert list(db_path.parent.glob(f"{FILE_NAME}.corrupt-*"))  # set aside, not deleted
    assert server.billed_documents == len(DOCS)

    again = api_cli(QUERY, *DOCS)  # the fresh cache works
    check_scores(again, DOCS)
    assert warnings_in(again) == []
    assert server.billed_documents == len(DOCS)


def test_an_unusable_cache_directory_warns_once_and_runs_uncached(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # tests run as root: chmod would not stop a write
    env = {"RERANK_CACHE_DIR": str(blocker / "cache")}
    texts = [*DOCS, DOCS[0]]
    for run in (1, 2):
        result = api_cli(QUERY, "--batch-size", "4", *texts, env=env)
        check_scores(result, texts)
        (warning,) = warnings_in(result)
        assert "cache off" in warning
        assert server.billed_documents == run * len(DOCS)  # uncached, still deduped
