"""``make bench``: how close the real CLI comes to ideal, on this machine.

1. Throughput: the loopback test server (tests/server.py) in its own process answers every
   rerank request after 50 ms; the installed ``rerank`` ranks 20,000 short documents with batch
   100 and concurrency 8. The ideal is ``ceil(N / (B·C)) × latency``: every round of C requests
   costing exactly one latency. Reported both for the scoring (the ``-v`` summary's elapsed
   time: from the first request to the last score) and for the whole process (start-up,
   reading, ranking and writing included). The HTTP stack is imported before the -v clock
   starts: start-up, counted in the whole-process figure.
   ``rerank batch``: 1,000 queries × 100 documents at 100 ms, batch 100, -j 8 (one run, ~14 s):
   a batch never spans two queries, so the batches are the sum over queries of
   ``ceil(documents / B)`` (here 1,000) and the ideal is ``ceil(batches / j) × latency`` (12.5 s).
2. Start-up (bench/start_up.py): ``rerank --version`` and ``rerank rank --help`` (P1), and a
   one-liner against an instant loopback server (P1b), wall time ÷ ``python -c pass`` (the same
   interpreter) and ÷ a plain httpx script, medians of several runs taken in turns.
   Rate limits (bench/rate_limit.py): a server limited to 20 requests/s, driven with -j 16.
   P2 and P3 (bench/grid.py): the whole process ÷ ideal for latency 10/100/300 ms × -j 1/4/16,
   the naive baseline (plain httpx, one request at a time) and our speed-up over it; the
   client's CPU per document against an instant server.
3. Cached rerun: the whole CLI ranking 100,000 documents that are all in its score cache, ÷
   the floor: bench/floor.py, the plainest Python doing the same work (read the lines, hash
   each pair, one SQLite lookup, write the same JSON lines, byte for byte), timed alternately
   with it in the same minutes.

``python -m bench --collector`` instead measures what pausing the cyclic GC during a command
(rerank_cli/collector.py) is worth: the cached rerun and the whole-process throughput run,
with and without it, alternately.

Figures vary with the machine and its load; they are printed with the machine's description.
Not a test: nothing here fails the build.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RERANK = Path(sys.executable).with_name("rerank")
FLOOR = Path(__file__).resolve().with_name("floor.py")
# The CLI's entry point run through ``python -c``, as is and with the collector never paused
# (collector.paused swapped for a no-op before the CLI imports it): --collector compares them.
_MAIN = "from rerank_cli.cli import main; raise SystemExit(main())"
_NO_PAUSE = "import contextlib, rerank_cli.collector as c; c.paused = contextlib.nullcontext; "
WITH_COLLECTOR_PAUSED = [sys.executable, "-c", _MAIN]
WITHOUT_COLLECTOR_PAUSED = [sys.executable, "-c", _NO_PAUSE + _MAIN]
KEY = "gr-bench-key-0000000000"

DOCUMENTS = 20_000
BATCH = 100
CONCURRENCY = 8
LATENCY = 0.05
THROUGHPUT_TARGET = 1.10
CACHED_TARGET = 1.0  # the whole CLI's cached rerun ÷ the floor's
RUNS = 3  # throughput runs; the median counts
STARTUP_RUNS = 15


@dataclass
class Row:
    name: str
    measured: str
    reference: str
    ratio: float | None
    target: str

    def verdict(self, limit: float | None) -> str:
        if self.ratio is None or limit is None:
            return ""
        return "ok" if self.ratio <= limit else "MISSED"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def environment(**extra: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on some build machines) would make every run compile the
    # package from source, ~50 ms no installed rerank pays: pip compiles it at install time.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("RERANK_") and name not in ("GR_KEY", "PYTHONDONTWRITEBYTECODE")
    }
    # The loopback server is never reached through a proxy the machine may have set.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1,localhost,::1"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env.update(extra)
    return env


# --- 1. throughput -------------------------------------------------------------------------------


class ServerProcess:
    """tests/server.py in a process of its own, so that it shares no interpreter with the CLI."""

    def __init__(self, latency: float, *options: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.server",
                "--port",
                "0",
                "--latency",
                str(latency),
                *options,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError("the test server did not start")

    def stats(self) -> dict[str, Any]:
        url = self.base_url.removesuffix("/v1") + "/_stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            stats: dict[str, Any] = orjson.loads(response.read())
            return stats

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def write_documents(path: Path) -> None:
    topics = ["retries", "timeouts", "keys", "batches", "caching", "ranking", "pipes", "JSON"]
    lines = (
        f"note {i}: how {topics[i % len(topics)]} work in module {i % 97}" for i in range(DOCUMENTS)
    )
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Run:
    wall: float  # the whole rerank process
    scoring: float | None  # its -v summary's elapsed time, if the summary says it
    served: float  # at the server: the first request in → the last answer out


def rank_once(
    documents: Path, command: list[str] | None = None, latency: float = LATENCY, **env: str
) -> Run:
    """One rerank process against a fresh server (so that the server's counters are its own)."""
    server = ServerProcess(latency)
    try:
        return _rank(server, documents, command or [str(RERANK)], env)
    finally:
        server.stop()


_ELAPSED = re.compile(r"\b([0-9]+\.[0-9]+) s\b")


def _rank(server: ServerProcess, documents: Path, command: list[str], extra: dict[str, str]) -> Run:
    args = [
        *command,
        "how do retries work",
        "-i",
        str(documents),
        "--base-url",
        server.base_url,
        "--batch-size",
        str(BATCH),
        "-j",
        str(CONCURRENCY),
        "-o",
        "jsonl",
        "-v",
    ]
    # No user configuration, and an empty score cache: every document goes to the server.
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
        env = environment(
            GR_KEY=KEY,
            RERANK_CONFIG_DIR=f"{home}/config",
            RERANK_CACHE_DIR=f"{home}/cache",
            **extra,
        )
        with open(os.devnull, "wb") as devnull:
            started = time.perf_counter()
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=devnull,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"rerank failed ({done.returncode}): {done.stderr}")
    stats = server.stats()
    expected = (DOCUMENTS, math.ceil(DOCUMENTS / BATCH), CONCURRENCY)
    counted = (stats["billed_documents"], stats["rerank_requests"], stats["max_in_flight"])
    if counted != expected:
        raise RuntimeError(f"documents, requests, concurrency: {counted}, expected {expected}")
    found = _ELAPSED.search(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else None
    served = float(stats["last_answered"]) - float(stats["first_received"])
    return Run(wall, float(found.group(1)) if found else None, served)


CACHED = 100_000
CACHED_RUNS = 7  # of each, alternately
CACHED_QUERY = "module 5"


def timed(args: list[str], env: dict[str, str]) -> float:
    with open(os.devnull, "wb") as devnull:
        started = time.perf_counter()
        subprocess.run(args, stdin=subprocess.DEVNULL, stdout=devnull, env=env, check=True)
        return time.perf_counter() - started


@dataclass
class Timings:
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    def __str__(self) -> str:
        return f"{self.median:.3f} s (best {self.best:.3f} s)"


def alternate(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, Timings]:
    """Each command ``runs`` times, taking turns (a, b, a, b …): a change in the machine's
    speed hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, args in commands.items():
            times[name].append(timed(args, env))
    return {name: Timings(t) for name, t in times.items()}


class CachedSetup:
    """100,000 lines, a server, and a score cache holding all of them: the first run pays
    (not timed) and its output is kept. ``rerank(command)`` is the rerun's command line."""

    def __init__(self, home: str) -> None:
        self.home = Path(home)
        self.documents = self.home / "docs.txt"
        self.documents.write_text(
            "".join(f"cached note {i} about module {i % 97}\n" for i in range(CACHED))
        )
        self.env = environment(
            GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
        )
        self.server = ServerProcess(0.0)
        try:
            self.output = self.home / "first.jsonl"
            with open(self.output, "wb") as out:
                args = self.rerank([str(RERANK)])
                subprocess.run(args, stdin=subprocess.DEVNULL, stdout=out, env=self.env, check=True)
            self.paid = self.requests()
        except BaseException:
            self.server.stop()
            raise

    def rerank(self, command: list[str]) -> list[str]:
        args = [CACHED_QUERY, "-i", str(self.documents), "--base-url", self.server.base_url]
        return [*command, *args, "-o", "jsonl", "--batch-size", "1000", "-j", "8"]

    def requests(self) -> int:
        return int(self.server.stats()["rerank_requests"])

    def __enter__(self) -> CachedSetup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def cached_rerun_vs_floor(notes: list[str]) -> Row:
    """The whole CLI's cached rerun ÷ bench/floor.py's, alternately: floor, CLI, floor, CLI …
    The floor reads a database of its own keys (the scores table's schema, one row per line,
    the same scores); it must write the CLI's output byte for byte, checked first."""
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home, CachedSetup(home) as setup:
        database = f"{home}/floor.sqlite"
        floor = [sys.executable, str(FLOOR)]
        files = [CACHED_QUERY, str(setup.documents), database]
        subprocess.run([*floor, "build", *files, str(setup.output)], env=setup.env, check=True)
        check = subprocess.run(
            [*floor, "rank", *files], env=setup.env, capture_output=True, check=True
        ).stdout
        if check != setup.output.read_bytes():
            raise RuntimeError("bench/floor.py does not write what the CLI writes")
        cpu = cpu_reference()  # how fast the machine is right now: see cpu_reference
        commands = {"floor": [*floor, "rank", *files], "cli": setup.rerank([str(RERANK)])}
        timings = alternate(commands, setup.env, CACHED_RUNS)
        requests = setup.requests() - setup.paid
    cli, base = timings["cli"], timings["floor"]
    pairs = sorted(c / f for c, f in zip(cli.times, base.times, strict=True))
    notes.append(
        f"cached rerun ÷ floor, each CLI run ÷ the floor run just before it: median"
        f" {statistics.median(pairs):.2f}, range {pairs[0]:.2f}–{pairs[-1]:.2f};"
        f" best ÷ best {cli.best / base.best:.2f}"
    )
    return Row(
        f"cached rerun, {CACHED:,} docs, whole CLI ÷ floor (plainest Python), {CACHED_RUNS}"
        " each alternately: median (best)",
        f"{cli}, {requests} requests",
        f"floor {base}; CPU reference {cpu:.3f} s",
        cli.median / base.median,
        f"≤ {CACHED_TARGET:.2f}",
    )


def throughput() -> list[Row]:
    ideal = math.ceil(DOCUMENTS / (BATCH * CONCURRENCY)) * LATENCY
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        documents = Path(directory) / "docs.txt"
        write_documents(documents)
        # Alternate, so that a change in the machine's load hits both alike.
        runs: dict[str, list[Run]] = {"cache": [], "no cache": []}
        for _ in range(RUNS):
            runs["cache"].append(rank_once(documents))
            runs["no cache"].append(rank_once(documents, RERANK_CACHE="off"))
    reference = f"ideal {ideal:.3f} s"
    target = f"≤ {THROUGHPUT_TARGET:.2f}"
    rows = []
    for mode, label in (("cache", "fresh score cache"), ("no cache", "RERANK_CACHE=off")):
        scoring = [r.scoring for r in runs[mode] if r.scoring is not None]
        if scoring:
            seconds = statistics.median(scoring)
            name = f"scoring (-v), {label}"
            rows.append(Row(name, f"{seconds:.3f} s", reference, seconds / ideal, target))
        seconds = statistics.median(r.served for r in runs[mode])
        name = f"server: first request → last answer, {label}"
        rows.append(Row(name, f"{seconds:.3f} s", reference, seconds / ideal, ""))
    seconds = statistics.median(r.wall for r in runs["cache"])
    rows.append(
        Row("whole process, fresh score cache", f"{seconds:.3f} s", reference, seconds / ideal, "")
    )
    return rows


def throughput_at_100ms() -> list[Row]:
    """The same run at 100 ms, where a fast path must show more than 5 % to stay."""
    latency = 0.1
    ideal = math.ceil(DOCUMENTS / (BATCH * CONCURRENCY)) * latency
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        documents = Path(directory) / "docs.txt"
        write_documents(documents)
        runs = [rank_once(documents, latency=latency) for _ in range(RUNS)]
    reference = f"ideal {ideal:.3f} s"
    scoring = statistics.median(r.scoring for r in runs if r.scoring is not None)
    wall = statistics.median(r.wall for r in runs)
    target = f"≤ {THROUGHPUT_TARGET:.2f}"
    return [
        Row(
            "scoring (-v) at 100 ms, fresh score cache",
            f"{scoring:.3f} s",
            reference,
            scoring / ideal,
            target,
        ),
        Row("whole process at 100 ms", f"{wall:.3f} s", reference, wall / ideal, ""),
    ]


# --- 1b. many queries: rerank batch ------------------------------------------------------------

BATCH_QUERIES = 1_000
BATCH_DOCUMENTS = 100  # per query: one request of BATCH each
BATCH_CONCURRENCY = 8
BATCH_LATENCY = 0.1
BATCH_RUNS = 1  # ~13 s each: one run keeps make bench's time reasonable


def write_batch_queries(path: Path) -> None:
    topics = ["retries", "timeouts", "keys", "batches", "caching", "ranking", "pipes", "JSON"]
    with open(path, "wb") as out:
        for q in range(BATCH_QUERIES):
            documents = [
                f"note {q}.{d}: how {topics[(q + d) % len(topics)]} work in module {d % 97}"
                for d in range(BATCH_DOCUMENTS)
            ]
            line = {
                "id": f"q{q}",
                "query": f"how do {topics[q % len(topics)]} work",
                "documents": documents,
            }
            out.write(orjson.dumps(line) + b"\n")


def batch_once(queries: Path) -> tuple[Run, int]:
    """One ``rerank batch`` process against a fresh server: (its times, the -j it reached)."""
    server = ServerProcess(BATCH_LATENCY)
    try:
        with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
            args = [
                str(RERANK),
                "batch",
                str(queries),
                "--out",
                f"{home}/run.jsonl",
                "--stats",
                f"{home}/stats.json",
                "--base-url",
                server.base_url,
                "--batch-size",
                str(BATCH),
                "-j",
                str(BATCH_CONCURRENCY),
            ]
            env = environment(
                GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
            )
            started = time.perf_counter()
            done = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, env=env, text=True, check=False
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"rerank batch failed ({done.returncode}): {done.stderr}")
            lines = Path(f"{home}/run.jsonl").read_bytes().count(b"\n")
            elapsed = orjson.loads(Path(f"{home}/stats.json").read_bytes()).get("elapsed_seconds")
        stats = server.stats()
    finally:
        server.stop()
    total = BATCH_QUERIES * BATCH_DOCUMENTS
    expected = (BATCH_QUERIES, total, BATCH_QUERIES * math.ceil(BATCH_DOCUMENTS / BATCH))
    counted = (lines, stats["billed_documents"], stats["rerank_requests"])
    if counted != expected:
        raise RuntimeError(f"lines, documents, requests: {counted}, expected {expected}")
    served = float(stats["last_answered"]) - float(stats["first_received"])
    scoring = float(elapsed) if elapsed is not None else None
    return Run(wall, scoring, served), int(stats["max_in_flight"])


def batch_throughput() -> list[Row]:
    """``rerank batch``: BATCH_QUERIES queries of BATCH_DOCUMENTS documents each at 100 ms. A
    batch never spans two queries, so the batches are sum over queries of ceil(documents / B)
    (here one per query); the ideal is ceil(batches / j) rounds of one latency each."""
    batches = BATCH_QUERIES * math.ceil(BATCH_DOCUMENTS / BATCH)
    ideal = math.ceil(batches / BATCH_CONCURRENCY) * BATCH_LATENCY
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        queries = Path(directory) / "queries.jsonl"
        write_batch_queries(queries)
        results = [batch_once(queries) for _ in range(BATCH_RUNS)]
    runs = [run for run, _ in results]
    reached = max(j for _, j in results)
    reference = f"ideal {ideal:.3f} s"
    what = (
        f"{BATCH_QUERIES:,} queries × {BATCH_DOCUMENTS} docs, batch {BATCH}, -j {BATCH_CONCURRENCY}"
        f" (reached {reached}), 100 ms"
    )
    rows = []
    scoring = [r.scoring for r in runs if r.scoring is not None]
    if scoring:
        seconds = statistics.median(scoring)
        rows.append(
            Row(
                f"batch: scoring (--stats elapsed), {what}",
                f"{seconds:.3f} s",
                reference,
                seconds / ideal,
                "",
            )
        )
    seconds = statistics.median(r.served for r in runs)
    rows.append(
        Row(
            "batch: server, first request → last answer",
            f"{seconds:.3f} s",
            reference,
            seconds / ideal,
            "",
        )
    )
    seconds = statistics.median(r.wall for r in runs)
    rows.append(
        Row(
            "batch: whole process (reading, writing 1,000 lines)",
            f"{seconds:.3f} s",
            reference,
            seconds / ideal,
            f"≤ {THROUGHPUT_TARGET:.2f}",
        )
    )
    return rows


# --- P5. memory: a million lines from stdin ---------------------------------------------------

MEMORY_LINES = 1_000_000
MEMORY_QUERY = "how do retries work"


def write_memory_lines(path: Path) -> int:
    """A million short lines (~66 bytes each, ~66 MB): the size of input the target is set at."""
    topics = ["retries", "timeouts", "keys", "batches", "caching", "ranking", "pipes", "JSON"]
    with open(path, "w") as out:
        for i in range(MEMORY_LINES):
            out.write(f"note {i}: how {topics[i % 8]} work in module {i % 97}, with a few words.\n")
    return path.stat().st_size


def peak_rss(server: ServerProcess, documents: Path, extra: list[str]) -> tuple[float, int]:
    """(peak RSS in MB, exit status) of one ``rerank`` ranking ``documents`` from stdin: the
    child's ru_maxrss, from wait4."""
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
        env = environment(
            GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
        )
        args = [str(RERANK), MEMORY_QUERY, "--base-url", server.base_url, "-o", "jsonl", *extra]
        with open(documents, "rb") as stdin, open(os.devnull, "wb") as devnull:
            child = subprocess.Popen(args, stdin=stdin, stdout=devnull, env=env)
            _, status, usage = os.wait4(child.pid, 0)
    return usage.ru_maxrss / 1024, status  # kilobytes on Linux


def memory() -> list[Row]:
    """P5: peak RSS ranking a million lines piped on stdin, with -k 10 and with the full
    output, against an instant loopback server; the target is 3 × input + 60 MB."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        documents = Path(directory) / "lines.txt"
        size = write_memory_lines(documents) / 2**20
        target = 3 * size + 60
        server = ServerProcess(0.0)
        try:
            for label, extra in (("-k 10", ["-k", "10"]), ("full output", [])):
                mb, status = peak_rss(server, documents, extra)
                if status != 0:
                    raise RuntimeError(f"rerank failed (wait status {status})")
                rows.append(
                    Row(
                        f"P5 peak RSS, {MEMORY_LINES:,} lines from stdin, {label}",
                        f"{mb:.0f} MB",
                        f"input {size:.0f} MB",
                        mb / target,
                        f"≤ 3 × input + 60 MB = {target:.0f} MB",
                    )
                )
        finally:
            server.stop()
    return rows


# --- 2. start-up: bench/start_up.py -----------------------------------------------------------


# --- --collector ---------------------------------------------------------------------------------

COLLECTOR_RUNS = 5  # of each, alternately


def collector() -> None:
    """What pausing the collector during a command is worth: the same runs with it paused (as
    shipped) and never paused, alternately."""
    if importlib.util.find_spec("rerank_cli.collector") is None:
        print("rerank_cli.collector is gone: nothing to compare")
        return
    names = ("paused (as shipped)", "never paused")
    commands = (WITH_COLLECTOR_PAUSED, WITHOUT_COLLECTOR_PAUSED)
    results: list[tuple[str, Timings, Timings]] = []
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home, CachedSetup(home) as setup:
        runs = {name: setup.rerank(command) for name, command in zip(names, commands, strict=True)}
        timings = alternate(runs, setup.env, COLLECTOR_RUNS)
        if setup.requests() != setup.paid:
            raise RuntimeError("a cached rerun made requests")
        name = f"cached rerun, {CACHED:,} docs, whole process"
        results.append((name, timings[names[0]], timings[names[1]]))
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as directory:
        documents = Path(directory) / "docs.txt"
        write_documents(documents)
        walls: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(COLLECTOR_RUNS):
            for name, command in zip(names, commands, strict=True):
                walls[name].append(rank_once(documents, command).wall)
        name = f"throughput, {DOCUMENTS:,} docs at {LATENCY * 1000:.0f} ms, whole process"
        results.append((name, Timings(walls[names[0]]), Timings(walls[names[1]])))
    header = ("benchmark", f"collector {names[0]}", names[1], "never ÷ paused: median, best")
    cells = [header] + [
        (
            name,
            str(on),
            str(off),
            f"{off.median / on.median - 1:+.1%}, {off.best / on.best - 1:+.1%}",
        )
        for name, on, off in results
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    print(
        f"\n{COLLECTOR_RUNS} runs of each, alternately, through python -c (never paused:"
        " collector.paused swapped for contextlib.nullcontext); + means slower without pausing."
    )


# --- the table -----------------------------------------------------------------------------------


def print_table(rows: list[Row], limits: list[float | None]) -> None:
    header = ("benchmark", "measured", "reference", "ratio", "target", "")
    cells = [header] + [
        (
            r.name,
            r.measured,
            r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            r.verdict(limit),
        )
        for r, limit in zip(rows, limits, strict=True)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


CPU_LOOP = "s = 0\nfor i in range(3_000_000):\n    s += i"


def cpu_reference() -> float:
    """Seconds a fixed pure-Python loop takes now (best of 3, in a process of its own). A
    shared VM's CPU speed drifts by tens of percent from minute to minute: this says how fast
    the machine was while the figures were taken."""
    code = f"import time\nt = time.perf_counter()\n{CPU_LOOP}\nprint(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--collector", action="store_true", help="only: the collector paused vs never paused"
    )
    parser.add_argument(
        "--memory", action="store_true", help="only: P5, peak RSS for a million lines on stdin"
    )
    options = parser.parse_args()
    if not RERANK.exists():
        print(f"{RERANK} not found: run make install first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"CPU reference (a 3,000,000-step Python loop) before: {cpu_reference():.3f} s")
    if options.memory:
        rows = memory()
        print_table(rows, [1.0] * len(rows))
        return 0
    if options.collector:
        collector()
        print(f"CPU reference after: {cpu_reference():.3f} s")
        print(f"bench took {time.perf_counter() - started:.0f} s")
        return 0
    print(
        f"throughput: {DOCUMENTS:,} documents, batch {BATCH}, -j {CONCURRENCY}, server latency"
        f" {LATENCY * 1000:.0f} ms (and 100 ms where it says); medians of {RUNS} runs\n"
    )
    throughput_rows = throughput() + throughput_at_100ms() + batch_throughput()
    rows = list(throughput_rows)
    limits: list[float | None] = [
        THROUGHPUT_TARGET if row.target else None for row in throughput_rows
    ]
    # Rate limits (bench/rate_limit.py); start-up, P1 and P1b (bench/start_up.py).
    from bench.grid import grid_rows
    from bench.rate_limit import rate_limit_rows
    from bench.start_up import start_up_rows

    for row, limit in [*grid_rows(), *rate_limit_rows(), *start_up_rows()]:
        rows.append(row)
        limits.append(limit)
    try:
        from bench.bench_cache import bench_cached_rerun
    except ImportError:
        pass
    else:
        seconds, requests = bench_cached_rerun()
        rows.append(
            Row(
                "cached rerun, 100,000 docs: cache and pipeline",
                f"{seconds:.3f} s",
                f"{requests} requests",
                None,
                "≤ 1 s, 0 requests",
            )
        )
        limits.append(None)
    notes: list[str] = []
    rows.append(cached_rerun_vs_floor(notes))
    limits.append(CACHED_TARGET)
    memory_rows = memory()
    rows += memory_rows
    limits += [1.0] * len(memory_rows)
    print_table(rows, limits)
    print(
        "\nscoring: the -v summary's elapsed time (cache lookup, planning batches, every request;"
        " the HTTP stack is imported before it starts);\nserver: from the first request's"
        " arrival to the last answer's departure;"
        "\nwhole process: start-up, reading 20,000 lines and writing 20,000 JSON lines included;"
        "\nfloor: bench/floor.py (read the lines, hash each pair, one SQLite lookup, write the"
        " same JSON lines); ratio: median ÷ median."
        f"\nbatch: {BATCH_RUNS} run; ideal ceil(batches / j) × latency, a batch never spanning two"
        " queries (one of 100 per query); scoring is --stats' elapsed_seconds"
    )
    for note in notes:
        print(note)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"CPU reference after: {cpu_reference():.3f} s")
    print(f"bench took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
