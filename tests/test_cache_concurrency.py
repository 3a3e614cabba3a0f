"""Several rerank processes sharing one cache file at once (a CI matrix on one runner): all
finish, none warns, every score is right, and the file holds each key exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rerank_cli.store.score_cache import FILE_NAME, Scope, ScoreCache, make_keys

ROOT = Path(__file__).resolve().parent.parent
SCOPE = Scope.for_api("https://gigarouter.ai/v1", "m")
QUERY = "shared query"

# One worker: wait for the start signal, score texts[start:end] through the cache in small
# batches (many short write transactions that collide with the other workers'), check every
# score, print the counts.
WORKER = r"""
import asyncio, json, os, sys, time, zlib
from pathlib import Path
from rerank_cli.store.score_cache import ScoreCache, Scope
from rerank_cli.engines.interface import Stats
from rerank_cli.store.cached_engine import CachedEngine

path, go, start, end, batch = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:6])
delay = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0

def true_score(text):
    return (zlib.crc32(text.encode()) % 10_000) / 10_000

class Engine:
    name = "fake"
    sent = 0
    async def score(self, query, texts, on_scores=None):
        scores = [true_score(t) for t in texts]
        for s in range(0, len(texts), batch):
            await asyncio.sleep(delay)
            positions = list(range(s, min(s + batch, len(texts))))
            self.sent += len(positions)
            on_scores(positions, [scores[i] for i in positions])
        return scores

Path(f"{go}.ready.{os.getpid()}").touch()  # imports done: ready to start with the others
while not go.exists():
    time.sleep(0.005)
warnings = []
cache = ScoreCache.open(path, warnings.append)
texts = [f"text {i}" for i in range(start, end)]
inner, stats = Engine(), Stats()
with cache:
    got = asyncio.run(CachedEngine(inner, cache, Scope.for_api(
        "https://gigarouter.ai/v1", "m"), stats=stats).score("shared query", texts))
wrong = sum(1 for t, s in zip(texts, got) if s != true_score(t))
print(json.dumps({"hits": stats.cache_hits, "sent": inner.sent, "wrong": wrong,
                  "warnings": warnings}))
"""

RANGES = [(0, 1500), (500, 2000), (1000, 2500), (0, 2500)]


def run_workers(
    path: Path, go: Path, batch: int, ranges: list[tuple[int, int]] = RANGES
) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(go), str(a), str(b), str(batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for a, b in ranges
    ]
    try:
        # Every interpreter has started and imported, so they really begin together.
        ready = [Path(f"{go}.ready.{worker.pid}") for worker in workers]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), "a worker died before the start"
            time.sleep(0.005)
        assert all(r.exists() for r in ready), "the workers did not start within 120 s"
        go.touch()
        reports = []
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
            assert err == ""
            reports.append(json.loads(out))
    finally:
        for worker in workers:  # after a failure: none is left running or unreaped
            if worker.poll() is None:
                worker.kill()
            worker.communicate()
    go.unlink()
    for r in ready:
        r.unlink()
    return reports


def true_score(text: str) -> float:
    import zlib

    return (zlib.crc32(text.encode()) % 10_000) / 10_000


def test_concurrent_processes_share_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache" / FILE_NAME  # does not exist yet: they race to create it
    go = tmp_path / "go"

    first = run_workers(path, go, batch=3)
    for report in first:
        assert report["wrong"] == 0
        assert report["warnings"] == []
    # Overlapping texts may be sent by more than one worker (they run at the same time),
    # but every text is sent by someone and nothing is lost.
    assert sum(int(r["sent"]) for r in first) >= 2500

    texts = [f"text {i}" for i in range(2500)]
    store = ScoreCache.open(path, lambda message: (_ for _ in ()).throw(AssertionError(message)))
    assert store is not None
    with store:
        assert store.entries() == 2500
        assert store.lookup(make_keys(SCOPE, QUERY, texts)) == [true_score(t) for t in texts]

    second = run_workers(path, go, batch=3)  # and now everyone is answered from the cache
    for report, (a, b) in zip(second, RANGES, strict=True):
        assert report == {"hits": b - a, "sent": 0, "wrong": 0, "warnings": []}


def test_a_killed_process_leaves_a_sound_cache_with_what_it_paid_for(tmp_path: Path) -> None:
    import signal

    path = tmp_path / "cache" / FILE_NAME
    go = tmp_path / "go"
    go.touch()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), str(go), "0", "1000", "10", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        stored = 0
        deadline = time.monotonic() + 120
        while stored < 50 and time.monotonic() < deadline:  # some batches have landed
            time.sleep(0.05)
            stored = _count(path)
        assert stored >= 50
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    warnings: list[str] = []
    store = ScoreCache.open(path, warnings.append)
    assert store is not None
    texts = [f"text {i}" for i in range(1000)]
    with store:
        found = store.lookup(make_keys(SCOPE, QUERY, texts))
    assert warnings == []
    kept = [(t, s) for t, s in zip(texts, found, strict=True) if s is not None]
    assert 50 <= len(kept) < 1000
    assert all(s == true_score(t) for t, s in kept)

    again = run_workers(path, go, batch=10, ranges=[(0, 1000)])[0]  # the rerun pays the rest
    assert again == {"hits": len(kept), "sent": 1000 - len(kept), "wrong": 0, "warnings": []}


def _count(path: Path) -> int:
    import sqlite3
    from contextlib import closing

    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM scores").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
