"""P2 and P3: the whole process against the loopback server (in its own process).

- P2: 20,000 documents, batch 100, for latency 10/100/300 ms × concurrency 1/4/16: the whole
  ``rerank`` process (start-up, reading, ranking, writing) ÷ the ideal ``ceil(N / (B·C)) × L``
  (every round of C requests costing exactly one latency). Target ≤ 1.10 at 100 ms and above.
  Beside it, the naive baseline at each latency: plain httpx, one request at a time, as
  sequential tools do (bench/naive.py, which reads the same file and writes the same ranking),
  and our speed-up over it at -j 16.
- P3: the client's CPU per document (user + system, from ``resource.getrusage`` of the child)
  ranking 100,000 documents against a server that answers at once: ≤ 20 µs per document.

``python -m bench.grid`` runs these rows alone.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import KEY, RERANK, Row, ServerProcess, environment

DOCUMENTS = 20_000
BATCH = 100
LATENCIES = (0.01, 0.1, 0.3)
CONCURRENCIES = (1, 4, 16)
TARGET = 1.10  # at 100 ms and above
CPU_DOCUMENTS = 100_000
CPU_TARGET_US = 20.0
NAIVE = Path(__file__).resolve().with_name("naive.py")


def _documents(path: Path, count: int) -> None:
    topics = ["retries", "timeouts", "keys", "batches", "caching", "ranking", "pipes", "JSON"]
    path.write_text(
        "".join(f"note {i}: how {topics[i % 8]} work in module {i % 97}\n" for i in range(count))
    )


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=devnull,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _rerank(documents: Path, base_url: str, concurrency: int, home: str) -> list[str]:
    return [
        str(RERANK), "how do retries work", "-i", str(documents), "--base-url", base_url,
        "--batch-size", str(BATCH), "-j", str(concurrency), "-o", "jsonl", "--no-cache",
    ]  # fmt: skip


def grid_rows() -> list[tuple[Row, float | None]]:
    rows: list[tuple[Row, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
        documents = Path(home) / "docs.txt"
        _documents(documents, DOCUMENTS)
        env = environment(
            GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
        )
        for latency in LATENCIES:
            server = ServerProcess(latency)
            try:
                walls: dict[int, float] = {}
                for concurrency in CONCURRENCIES:
                    args = _rerank(documents, server.base_url, concurrency, home)
                    walls[concurrency], _ = _run(args, env)
                naive, _ = _run(
                    [sys.executable, str(NAIVE), server.base_url, str(documents), str(BATCH)], env
                )
            finally:
                server.stop()
            ms = f"{latency * 1000:.0f} ms"
            for concurrency, wall in walls.items():
                ideal = math.ceil(DOCUMENTS / (BATCH * concurrency)) * latency
                limit = TARGET if latency >= 0.1 else None
                rows.append(
                    (
                        Row(
                            f"P2: whole process, {ms}, -j {concurrency}",
                            f"{wall:.2f} s",
                            f"ideal {ideal:.2f} s",
                            wall / ideal,
                            f"≤ {TARGET:.2f}" if limit else "",
                        ),
                        limit,
                    )
                )
            best = walls[max(CONCURRENCIES)]
            rows.append(
                (
                    Row(
                        f"P2: naive (plain httpx, one request at a time), {ms}: ÷ ours at -j "
                        f"{max(CONCURRENCIES)} = our speed-up",
                        f"{naive:.2f} s",
                        f"ours {best:.2f} s",
                        naive / best,
                        "",
                    ),
                    None,
                )
            )
    rows.append(cpu_per_document())
    return rows


def cpu_per_document() -> tuple[Row, float | None]:
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
        documents = Path(home) / "docs.txt"
        _documents(documents, CPU_DOCUMENTS)
        env = environment(
            GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
        )
        server = ServerProcess(0.0)
        try:
            args = _rerank(documents, server.base_url, 8, home)
            _run(args, env)  # warm the file cache
            cpus = sorted(_run(args, env)[1] for _ in range(3))
        finally:
            server.stop()
    per_document = cpus[1] / CPU_DOCUMENTS * 1e6
    return (
        Row(
            f"P3: client CPU per document, {CPU_DOCUMENTS:,} docs, instant server, -j 8, "
            "no cache (median of 3)",
            f"{per_document:.1f} µs",
            f"{cpus[1]:.2f} s CPU",
            per_document / CPU_TARGET_US,
            f"≤ {CPU_TARGET_US:.0f} µs (ratio ≤ 1)",
        ),
        1.0,
    )


if __name__ == "__main__":
    from bench.__main__ import print_table

    rows = grid_rows()
    print_table([row for row, _ in rows], [limit for _, limit in rows])
