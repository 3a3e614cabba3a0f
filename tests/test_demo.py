"""``make demo``'s script (examples/demo.sh) as a real process: offline without GR_KEY, the
hosted API (here: the loopback server through RERANK_BASE_URL) with it; it says which on
stderr and prints a table of the bundled sample."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import TEST_KEY, RunCli
from tests.server import RerankServer, score

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "demo.sh"
SAMPLE = ROOT / "examples" / "sample.jsonl"
QUERY = "how are failed requests retried?"  # the script's
# The script runs .venv/bin/rerank from the repository root, as `make demo` installs it.
pytestmark = pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "rerank").exists(), reason="no .venv/bin/rerank (make install)"
)
ROW = re.compile(r"^\s*(\d+)\s+(\d\.\d{4})\s+.*?\s(examples/sample\.jsonl:\d+)\s*$")


def demo(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,  # conftest removed any key or RERANK_* setting of the host
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "200",
        **extra,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=tmp_path,  # the script finds the repository itself
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


def table_sources(stdout: str) -> list[str]:
    """The ``file:line`` of each table row, in rank order (the ranks checked to be 1, 2, …)."""
    rows = [match for line in stdout.splitlines() if (match := ROW.match(line))]
    assert [int(row[1]) for row in rows] == list(range(1, len(rows) + 1)), stdout
    return [row[3] for row in rows]


def sample_texts() -> list[str]:
    return [orjson.loads(line)["text"] for line in SAMPLE.read_bytes().splitlines()]


def test_without_a_key_it_ranks_offline_and_says_so(cli: RunCli, tmp_path: Path) -> None:
    done = demo(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "GR_KEY is not set" in done.stderr
    assert "--engine lexical" in done.stderr
    # The table is the lexical ranking of the sample, top 5.
    expected = cli(QUERY, "-i", str(SAMPLE), "--engine", "lexical", "-k", "5").records()
    assert len(expected) == 5
    wanted = [f"examples/sample.jsonl:{r['source']['line']}" for r in expected]
    assert table_sources(done.stdout) == wanted


def test_with_a_key_it_uses_the_api_and_says_so(server: RerankServer, tmp_path: Path) -> None:
    done = demo(tmp_path, GR_KEY=TEST_KEY, RERANK_BASE_URL=server.base_url)
    assert done.returncode == 0, done.stderr
    assert f"ranking with the hosted API ({server.base_url})" in done.stderr
    assert "--engine api" in done.stderr
    assert TEST_KEY not in done.stdout + done.stderr
    (request,) = server.rerank_requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    texts = sample_texts()
    assert request.documents == texts
    # The table is the server's ranking, top 5.
    best = sorted(range(len(texts)), key=lambda i: -score(QUERY, texts[i]))[:5]
    assert table_sources(done.stdout) == [f"examples/sample.jsonl:{i + 1}" for i in best]
