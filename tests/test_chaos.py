"""Chaos: 30 % of requests fail at random — 429, 500, 502, 503, 504, a reset connection, a body
cut short — and the final ranking is still byte for byte the fault-free one, whatever the seed,
the batch size and the concurrency.

The status faults ask for no wait (``retry-after-ms: 0``); a reset or a cut body gets the
client's own jittered backoff (there is no faster setting), so the runs are kept small. Retries
are raised to 30 so that a chain of failures on one batch (0.3^7 ≈ 2e-4 per batch with the
default 6) cannot end a run: what is tested is that retried batches come back right."""

from __future__ import annotations

import io
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.cli import main
from rerank_cli.terminal import Environment
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer

QUERY = "where is the retry backoff configured"
WORDS = ("retry", "backoff", "timeout", "config", "server", "cache", "where", "is", "the", "a")
COUNT = 60
FAILURE_RATE = 0.3
NO_WAIT = {"retry-after-ms": "0"}
QUEUED = 500  # more than any run's requests: the rest of the queue is never reached

KINDS: dict[str, Callable[[], Fault]] = {
    "429": lambda: Fault.error(429, "slow down", headers=NO_WAIT),
    "500": lambda: Fault.error(500, headers=NO_WAIT),
    "502": lambda: Fault.error(502, headers=NO_WAIT),
    "503": lambda: Fault.error(503, "model is warming up", headers=NO_WAIT),
    "504": lambda: Fault.error(504, headers=NO_WAIT),
    "reset": Fault.reset_connection,
    "truncated": Fault.truncated,
}
DOCUMENTS = "".join(
    f"{n} {' '.join(WORDS[(n * k + k) % len(WORDS)] for k in range(1, 5))}\n" for n in range(COUNT)
).encode()


def rank(server: RerankServer, home: str, *options: str) -> tuple[int, bytes, str]:
    environment = Environment(
        stdin=io.BytesIO(DOCUMENTS),
        stdout=io.BytesIO(),
        stderr=io.StringIO(),
        env={
            "RERANK_CONFIG_DIR": f"{home}/config",
            "RERANK_CACHE_DIR": f"{home}/cache",
            "GR_KEY": TEST_KEY,
        },
    )
    code = main([QUERY, "--base-url", server.base_url, *options], environment)
    stdout = environment.stdout.getvalue()  # type: ignore[attr-defined]
    return code, stdout, environment.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    with RerankServer(api_key=TEST_KEY) as server:
        code, stdout, stderr = rank(server, str(tmp_path_factory.mktemp("reference")))
    assert (code, stderr) == (0, "")
    assert stdout.count(b"\n") == COUNT
    return stdout


def chaos(seed: int) -> list[Fault]:
    """The server's script: each request fails with probability 0.3, with a fault of a kind
    drawn at random; the first always fails, so that every run meets at least one."""
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    script = []
    for number in range(QUEUED):
        fails = number == 0 or rng.random() < FAILURE_RATE
        script.append(KINDS[rng.choice(kinds)]() if fails else Fault())
    return script


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch_size=st.integers(2, 12),
    jobs=st.integers(1, 8),
    output=st.sampled_from(["jsonl", "plain"]),
)
def test_random_failures_never_change_the_ranking(
    reference: bytes, seed: int, batch_size: int, jobs: int, output: str
) -> None:
    script = chaos(seed)
    with RerankServer(api_key=TEST_KEY) as server, tempfile.TemporaryDirectory() as home:
        server.add_faults(*script)
        options = ("--batch-size", str(batch_size), "-j", str(jobs), "--max-retries", "30")
        code, stdout, stderr = rank(server, home, *options, "-o", output)
        assert code == 0, stderr
        if output == "jsonl":
            assert stdout == reference
        else:  # the same documents in the same order
            lines = DOCUMENTS.splitlines(keepends=True)
            indexes = [
                int(line.split(b'"index":')[1].split(b",")[0]) for line in reference.splitlines()
            ]
            assert stdout == b"".join(lines[i] for i in indexes)
        met = QUEUED - len(server.faults)  # one fault (or none: Fault()) per request
        assert met == len(server.rerank_requests)
        failed = sum(fault != Fault() for fault in script[:met])
        assert failed >= 1
        # Each failure was retried: a request per batch, plus one per failure.
        batches = -(-COUNT // batch_size)
        assert met == batches + failed, stderr


def test_the_script_fails_about_three_requests_in_ten() -> None:
    script = chaos(7)
    share = sum(fault != Fault() for fault in script) / len(script)
    assert 0.22 < share < 0.38
    assert {f.status for f in script} >= {200, 429, 500, 502, 503, 504}
    assert any(f.reset for f in script) and any(f.truncate for f in script)


def test_chaos_fails_without_retries(reference: bytes, tmp_path: Path) -> None:
    """The same chaos with retries off fails (exit 4): the tests above do test retrying."""
    with RerankServer(api_key=TEST_KEY) as server:
        server.add_faults(*chaos(1))
        code, stdout, stderr = rank(
            server, str(tmp_path), "--batch-size", "5", "--max-retries", "0"
        )
    assert (code, stdout) == (4, b"")
    assert "failed after 1 attempt" in stderr
