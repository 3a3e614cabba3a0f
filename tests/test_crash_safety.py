"""Crash safety: ``rerank`` in a process of its own, the score cache on (in a directory of the
test's), SIGKILLed at a random point while the server answers slowly; then the same command
again. The rerun prints exactly what an uninterrupted run prints, and across both runs the
server bills every document once, plus at most what was in flight at the kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, RunCli, api_options
from tests.server import RerankServer

ROOT = Path(__file__).resolve().parent.parent
QUERY = "which line mentions the capital"
COUNT, BATCH, JOBS = 400, 10, 4  # 40 requests, 4 at a time: 10 rounds
LATENCY = 0.15
REQUESTS = COUNT // BATCH


def write_documents(path: Path) -> str:
    words = ("capital", "line", "mentions", "river", "the", "city", "which", "old", "new")
    path.write_text(
        "".join(
            f"{n}: {' '.join(words[(n * k + n // 7) % len(words)] for k in range(1, 6))}\n"
            for n in range(COUNT)
        )
    )
    return str(path)


def wait_until(condition: object, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_at_a_random_point_then_the_rerun_completes_paying_only_the_rest(
    seed: int,
    cli: RunCli,
    api_cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    tmp_path: Path,
) -> None:
    rng = random.Random(seed)
    documents = write_documents(tmp_path / "docs.txt")
    options = ("-i", documents, "-j", str(JOBS), "--batch-size", str(BATCH))
    server.latency = LATENCY
    # The kill: once `arrived` requests have come (the first JOBS+1 .. all but the last 4),
    # a random part of a request's latency later — mid-answer, mid-write, or between two.
    arrived = rng.randint(JOBS + 1, REQUESTS - JOBS)
    later = rng.uniform(0, LATENCY)
    env = {**os.environ, **isolated_env, "GR_KEY": TEST_KEY, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "rerank_cli", QUERY, *options, *api_options(server)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        wait_until(lambda: len(server.rerank_requests) >= arrived, f"{arrived} requests")
        time.sleep(later)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    assert stdout == b""  # killed before it could rank anything
    # The dead process's requests done with: whatever it sent is recorded, and billed.
    wait_until(lambda: server.connections_open == 0, "the killed process's connections")
    first = server.rerank_requests
    billed_first = server.billed_documents
    assert 0 < billed_first < COUNT
    assert billed_first == sum(len(r.documents) for r in first)

    server.latency = 0.0
    rerun = api_cli(QUERY, *options, "-v")
    assert rerun.exit_code == 0, rerun.stderr
    again = server.rerank_requests[len(first) :]
    sent_again = [d for r in again for d in r.documents]
    assert len(sent_again) == len(set(sent_again))  # nothing sent twice within the rerun
    # Paid twice: only documents of the first run's last requests — those on the wire at the
    # kill (at most -j) and an answer just received and not yet written to the cache.
    twice = {d for r in first for d in r.documents} & set(sent_again)
    assert len(twice) <= (JOBS + 1) * BATCH, (len(twice), arrived, later)
    assert twice <= {d for r in first[-(JOBS + 1) :] for d in r.documents}
    assert server.billed_documents == COUNT + len(twice)  # every other document billed once
    cached = COUNT - len(sent_again)
    assert f"{cached:,} cached" in rerun.stderr

    # The same command uninterrupted, on a fresh server and an empty cache: the same bytes.
    with RerankServer(api_key=TEST_KEY) as clean:
        whole = cli(QUERY, *options, *api_options(clean), "--no-cache", env={"GR_KEY": TEST_KEY})
    assert whole.exit_code == 0, whole.stderr
    assert rerun.stdout == whole.stdout
    assert rerun.stdout.count(b"\n") == COUNT
