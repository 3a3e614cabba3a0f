"""Rate limits: the installed ``rerank`` against the loopback server limited to N requests per
second (a token bucket of one second's worth, ``--rate-limit``), with more concurrency (-j 16)
than the limit allows at its latency (N × latency = 4 requests in flight would do).

Two figures: how fast it drove the server — requests let through per second, beyond the
bucket's initial burst, over the span from the first to the last let through, as a share of N
(target ≥ 90 %) — and the share of all requests answered 429 (target < 5 %).

``python -m bench.rate_limit`` runs this row alone.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.__main__ import KEY, RERANK, Row, ServerProcess, environment

RATE = 20.0  # requests per second
LATENCY = 0.2
CONCURRENCY = 16
BATCH = 10
DOCUMENTS = 2_000  # 200 requests: ~10 s at 20 per second
DRIVEN_TARGET = 0.90  # of RATE, at least
THROTTLED_TARGET = 0.05  # of all requests, less than


@dataclass
class RateRun:
    driven: float  # requests let through per second, beyond the initial burst
    throttled: int
    requests: int
    wall: float


def rate_limited_once() -> RateRun:
    server = ServerProcess(LATENCY, "--rate-limit", f"{RATE:g}")
    try:
        with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
            documents = Path(home) / "docs.txt"
            documents.write_text(
                "".join(f"rate note {i}: limits in module {i % 97}\n" for i in range(DOCUMENTS))
            )
            args = [
                str(RERANK),
                "how do limits work",
                "-i",
                str(documents),
                "--base-url",
                server.base_url,
                "--batch-size",
                str(BATCH),
                "-j",
                str(CONCURRENCY),
                "--max-retries",
                "20",
                "-o",
                "jsonl",
            ]
            env = environment(
                GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
            )
            started = time.perf_counter()
            done = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"rerank failed ({done.returncode}): {done.stderr!r}")
            lines = done.stdout.count(b"\n")
        stats = server.stats()
    finally:
        server.stop()
    batches = math.ceil(DOCUMENTS / BATCH)
    if (lines, stats["billed_documents"], stats["admitted"]) != (DOCUMENTS, DOCUMENTS, batches):
        raise RuntimeError(f"lines, documents, requests let through: {lines}, {stats}")
    span = float(stats["last_admitted"]) - float(stats["first_admitted"])
    burst = RATE  # the bucket's size: one second's worth, full at the start
    driven = (int(stats["admitted"]) - burst) / span if span > 0 else math.inf
    return RateRun(driven, int(stats["throttled"]), int(stats["rerank_requests"]), wall)


def rate_limit_rows() -> list[tuple[Row, float | None]]:
    """The rows and their limits (for the table's verdicts): ideal time ÷ time, as the other
    rows' ratios go (≤ 1/0.90), and the 429 share."""
    run = rate_limited_once()
    what = f"rate limit {RATE:g}/s, {LATENCY * 1000:.0f} ms, -j {CONCURRENCY}, {DOCUMENTS:,} docs"
    share = run.throttled / run.requests
    return [
        (
            Row(
                f"{what}: driven at (requests/s beyond the first burst)",
                f"{run.driven:.1f}/s = {run.driven / RATE:.0%} of {RATE:g}",
                f"limit {RATE:g}/s; whole process {run.wall:.1f} s",
                RATE / run.driven,
                f"≤ {1 / DRIVEN_TARGET:.2f} (≥ {DRIVEN_TARGET:.0%})",
            ),
            1 / DRIVEN_TARGET,
        ),
        (
            Row(
                f"{what}: answered 429",
                f"{run.throttled} of {run.requests} = {share:.1%}",
                "requests made, retries included",
                share,
                f"< {THROTTLED_TARGET:.2f}",
            ),
            THROTTLED_TARGET,
        ),
    ]


if __name__ == "__main__":
    from bench.__main__ import print_table

    rows = rate_limit_rows()
    print_table([row for row, _ in rows], [limit for _, limit in rows])
    sys.exit(0)
