"""Start-up, P1 and P1b: wall time of short commands ÷ ``python -c pass`` (the same
interpreter), all taken in turns (pass, --version, rank --help, one-liner, httpx, pass, …) so that
a change in the machine's speed hits them alike; medians.

- P1: ``rerank --version`` (target ≤ 3×) and ``rerank rank --help`` (≤ 12×).
- P1b: ``rerank "q" "doc one" "doc two" --no-cache`` against the loopback server answering at
  once (≤ 12×), and the same ÷ a plain httpx script posting the same two documents to the same
  server (a peer command line's floor: the HTTP stack and one request, nothing else).

``python -m bench.start_up`` runs these rows alone.
"""

from __future__ import annotations

import sys
import tempfile

from bench.__main__ import KEY, RERANK, Row, ServerProcess, Timings, alternate, environment

RUNS = 15
VERSION_TARGET = 3.0
HELP_TARGET = 12.0
ONE_LINER_TARGET = 12.0

HTTPX_SCRIPT = """\
import sys, httpx
body = {"model": "Qwen/Qwen3-Reranker-0.6B", "query": "q", "documents": ["doc one", "doc two"]}
headers = {"Authorization": "Bearer " + sys.argv[2]}
answer = httpx.post(sys.argv[1] + "/rerank", json=body, headers=headers)
answer.raise_for_status()
for result in answer.json()["results"]:
    print(result["index"], result["relevance_score"])
"""


def start_up_rows() -> list[tuple[Row, float | None]]:
    server = ServerProcess(0.0)
    try:
        with tempfile.TemporaryDirectory(prefix="rerank-bench-") as home:
            env = environment(
                GR_KEY=KEY, RERANK_CONFIG_DIR=f"{home}/config", RERANK_CACHE_DIR=f"{home}/cache"
            )
            rerank = str(RERANK)
            commands = {
                "python": [sys.executable, "-c", "pass"],
                "version": [rerank, "--version"],
                "help": [rerank, "rank", "--help"],
                "one-liner": [
                    rerank,
                    "q",
                    "doc one",
                    "doc two",
                    "--no-cache",
                    "--base-url",
                    server.base_url,
                ],
                "httpx": [sys.executable, "-c", HTTPX_SCRIPT, server.base_url, KEY],
            }
            alternate(commands, env, 2)  # warm the file cache first
            timings = alternate(commands, env, RUNS)
    finally:
        server.stop()
    base = timings["python"]

    def ms(t: Timings) -> str:
        return f"{t.median * 1000:.0f} ms"

    def row(name: str, key: str, target: float) -> tuple[Row, float]:
        t = timings[key]
        ratio = t.median / base.median
        return Row(name, ms(t), f"python -c pass {ms(base)}", ratio, f"≤ {target:.0f}"), target

    one, plain = timings["one-liner"], timings["httpx"]
    return [
        row("P1: rerank --version ÷ python -c pass", "version", VERSION_TARGET),
        row("P1: rerank rank --help ÷ python -c pass", "help", HELP_TARGET),
        row(
            "P1b: rerank q 'doc one' 'doc two' --no-cache (instant loopback) ÷ python -c pass",
            "one-liner",
            ONE_LINER_TARGET,
        ),
        (
            Row(
                "P1b: the same one-liner ÷ a plain httpx script posting the two documents",
                ms(one),
                f"httpx script {ms(plain)}",
                one.median / plain.median,
                "",
            ),
            None,
        ),
    ]


if __name__ == "__main__":
    from bench.__main__ import print_table

    rows = start_up_rows()
    print_table([row for row, _ in rows], [limit for _, limit in rows])
