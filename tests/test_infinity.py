"""The CLI against a real open-source rerank server: infinity-emb, serving a tiny cross-encoder
built here (tests/infinity_model.py), from its own venv (scripts/infinity-venv.sh).

The model is random, so no ranking is "right"; what is tested is that the CLI reproduces the
server's own judgement exactly — across batches, through the filters, and on its errors.
Without .venv-infinity every test here is skipped, saying how to build it; with
RERANK_REQUIRE_INFINITY=1 (CI) a missing venv fails instead, so a broken build cannot pass
as a skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.engines.api.protocol import parse_response
from tests.conftest import RunCli

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-infinity"
SERVER = VENV / "bin" / "infinity_emb"
MODEL_NAME = "Qwen/Qwen3-Reranker-0.6B"  # what the CLI asks for by default
KEY = "infinity-k3y-5e6f7a8b-SECRET"  # distinctive, so a leak would be visible
READY_WITHIN = 180.0  # seconds; it takes ~6 s here, but a cold disk cache on 2 cores is slow
RERANK_LOG = '"POST /v1/rerank HTTP/1.1" 200'  # uvicorn's access log line for one request
REFUSED_LOG = '"POST /v1/rerank HTTP/1.1" 401'

if not SERVER.exists() and os.environ.get("RERANK_REQUIRE_INFINITY") == "1":
    raise RuntimeError(f"RERANK_REQUIRE_INFINITY=1 but {SERVER} is missing")

pytestmark = [
    pytest.mark.infinity,
    pytest.mark.skipif(
        not SERVER.exists(),
        reason="no .venv-infinity: build it with scripts/infinity-venv.sh (~2 min, ~1.4 GB) "
        "to test against a real infinity-emb server",
    ),
]

QUERY = "what is the capital of france"
DOCUMENTS = [
    "paris is the capital of france",
    "bananas are yellow",
    "the sky is blue at day",
    "berlin is the capital of germany",
    "a cat and a dog",
    "python code with a bug",
    "madrid is in spain",
    "tea or coffee at night",
    "the river in rome",
]  # 9 distinct texts: with --batch-size 2 that is 5 requests, the last one short


@dataclass
class Infinity:
    base_url: str  # …/v1, as the CLI takes it
    root: str  # where /health lives
    log: Path

    def rerank(self, query: str, documents: list[str], **extra: Any) -> httpx.Response:
        """The same request the CLI makes, sent directly and in one piece."""
        body = {"model": MODEL_NAME, "query": query, "documents": documents, **extra}
        return httpx.post(
            f"{self.base_url}/rerank",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )

    def scores(self, query: str, documents: list[str]) -> list[float]:
        """The server's score for each document, by index."""
        response = self.rerank(query, documents)
        response.raise_for_status()
        by_index = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
        return [by_index[i] for i in range(len(documents))]

    def requests_served(self) -> int:
        return self.log.read_text(errors="replace").count(RERANK_LOG)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(process: subprocess.Popen[bytes], root: str, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"infinity_emb exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"infinity_emb not ready within {READY_WITHIN:g} s:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def infinity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infinity]:
    """One infinity-emb server for the session, serving a freshly built tiny cross-encoder."""
    workdir = tmp_path_factory.mktemp("infinity")
    model = workdir / "model"
    offline = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(workdir / "hf-home"),  # nothing read from or written to ~/.cache
        "DO_NOT_TRACK": "1",  # infinity's telemetry would try the network
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    }
    subprocess.run(
        [str(VENV / "bin" / "python"), str(ROOT / "tests" / "infinity_model.py"), str(model)],
        env=offline,
        check=True,
        timeout=300,
    )
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(SERVER),
                "v2",
                *("--model-id", str(model)),
                *("--served-model-name", MODEL_NAME),
                *("--device", "cpu"),
                "--no-model-warmup",
                *("--host", "127.0.0.1"),
                *("--port", str(port)),
                *("--url-prefix", "/v1"),
                *("--api-key", KEY),
            ],
            env=offline,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: teardown stops it and only it
        )
    root = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, root, log)
        yield Infinity(base_url=f"{root}/v1", root=root, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_cli(cli: RunCli, infinity: Infinity, *args: str, key: str | None = KEY) -> Any:
    env = {"GR_KEY": key} if key is not None else {}
    return cli(*args, "--base-url", infinity.base_url, "-o", "jsonl", env=env)


def server_order(scores: list[float]) -> list[int]:
    """Indices best first, ties by index: the order the CLI promises."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def spread(scores: list[float]) -> float:
    ordered = sorted(scores)
    return min(b - a for a, b in itertools.pairwise(ordered))


def wait_for_requests(infinity: Infinity, count: int) -> int:
    """Requests in the server's log, once ``count`` are there (the log may trail the answer)."""
    deadline = time.monotonic() + 10
    while infinity.requests_served() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return infinity.requests_served()


def test_infinity_response_shape_is_parsed(infinity: Infinity) -> None:
    response = infinity.rerank(QUERY, DOCUMENTS)
    assert response.status_code == 200, response.text
    payload = response.json()
    # The shape this test is about: infinity's own envelope, documents not echoed (null).
    assert payload["object"] == "rerank"
    assert {"results", "model", "usage", "id"} <= payload.keys()
    assert all(r["document"] is None for r in payload["results"])
    scores = parse_response(response.content, len(DOCUMENTS))
    expected = {r["index"]: r["relevance_score"] for r in payload["results"]}
    assert scores == [expected[i] for i in range(len(DOCUMENTS))]

    # With return_documents the document comes back as a plain string; still parsed.
    echoed = infinity.rerank(QUERY, DOCUMENTS, return_documents=True)
    assert {r["document"] for r in echoed.json()["results"]} == set(DOCUMENTS)
    assert parse_response(echoed.content, len(DOCUMENTS)) == pytest.approx(scores, abs=1e-6)


def test_ranking_equals_the_servers_own_order_across_batches(
    cli: RunCli, infinity: Infinity
) -> None:
    scores = infinity.scores(QUERY, DOCUMENTS)
    assert spread(scores) > 1e-4, f"the model's scores nearly tie, the test proves little: {scores}"
    before = infinity.requests_served()

    result = run_cli(cli, infinity, QUERY, *DOCUMENTS, "--batch-size", "2")

    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert [r["index"] for r in records] == server_order(scores)
    assert [r["text"] for r in records] == [DOCUMENTS[i] for i in server_order(scores)]
    assert [r["score"] for r in records] == pytest.approx(sorted(scores, reverse=True), abs=1e-5)
    assert [r["rank"] for r in records] == list(range(1, len(DOCUMENTS) + 1))
    # 9 documents in batches of 2: the server itself saw 5 requests.
    assert wait_for_requests(infinity, before + 5) - before == 5


def test_the_infinity_profile_with_its_own_key_variable(cli: RunCli, infinity: Infinity) -> None:
    """``-P infinity``: the key from INFINITY_API_KEY (GR_KEY unset), infinity's path."""
    scores = infinity.scores(QUERY, DOCUMENTS)
    before = infinity.requests_served()
    args = ("-P", "infinity", "--base-url", infinity.base_url, "-m", MODEL_NAME, "-o", "jsonl")

    result = cli(QUERY, *DOCUMENTS, *args, env={"INFINITY_API_KEY": KEY})

    assert result.exit_code == 0, result.stderr
    assert KEY not in result.stderr
    records = result.records()
    assert [r["index"] for r in records] == server_order(scores)
    assert [r["score"] for r in records] == pytest.approx(sorted(scores, reverse=True), abs=1e-5)
    assert wait_for_requests(infinity, before + 1) > before  # the server answered, not a cache


def test_top_k_keeps_the_servers_best(cli: RunCli, infinity: Infinity) -> None:
    best = server_order(infinity.scores(QUERY, DOCUMENTS))

    result = run_cli(cli, infinity, QUERY, *DOCUMENTS, "--batch-size", "2", "-k", "3")

    assert result.exit_code == 0, result.stderr
    assert [r["index"] for r in result.records()] == best[:3]


def test_min_score_cuts_at_the_servers_scores(cli: RunCli, infinity: Infinity) -> None:
    scores = infinity.scores(QUERY, DOCUMENTS)
    best = server_order(scores)
    # Halfway between the 4th and 5th best: exactly four documents pass.
    threshold = (scores[best[3]] + scores[best[4]]) / 2

    result = run_cli(
        cli, infinity, QUERY, *DOCUMENTS, "--batch-size", "2", "--min-score", repr(threshold)
    )
    assert result.exit_code == 0, result.stderr
    assert [r["index"] for r in result.records()] == best[:4]

    both = run_cli(cli, infinity, QUERY, *DOCUMENTS, "-k", "2", "--min-score", repr(threshold))
    assert [r["index"] for r in both.records()] == best[:2]

    none = run_cli(cli, infinity, QUERY, *DOCUMENTS, "--min-score", repr(max(scores) + 0.01))
    assert none.exit_code == 1
    assert none.stdout == b""


def test_a_wrong_key_exits_3(cli: RunCli, infinity: Infinity) -> None:
    refused_before = infinity.log.read_text(errors="replace").count(REFUSED_LOG)

    result = run_cli(cli, infinity, QUERY, *DOCUMENTS[:3], key="wrong-k3y-0000")

    assert result.exit_code == 3, result.stderr
    assert "the API key from GR_KEY (…0000) was rejected" in result.stderr
    assert "wrong-k3y-0000" not in result.stderr
    assert result.stdout == b""
    # It was the server that said no (401 {"detail": "Unauthorized"}), once: never retried.
    refused = infinity.log.read_text(errors="replace").count(REFUSED_LOG) - refused_before
    assert refused == 1


WORDS = ["paris", "capital", "france", "banana", "sky", "blue", "river", "code", "tea", "night"]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    documents=st.lists(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
        min_size=1,
        max_size=12,
    ),
    batch_size=st.integers(1, 5),
)
def test_any_batching_gives_the_servers_scores(
    cli: RunCli, infinity: Infinity, documents: list[str], batch_size: int
) -> None:
    """Invariant: however the documents are split into requests (repeats included), each gets
    the score the server gives it in one request, and the order follows those scores."""
    scores = infinity.scores("capital of france", documents)

    # --no-cache: every example asks the server (the cache would answer repeats from before).
    batching = ("--batch-size", str(batch_size), "--no-cache")
    result = run_cli(cli, infinity, "capital of france", *documents, *batching)

    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert sorted(r["index"] for r in records) == list(range(len(documents)))
    for record in records:
        assert record["score"] == pytest.approx(scores[record["index"]], abs=1e-5)
    # Best first by the server's scores (within float noise of different batch paddings).
    ranked = [scores[r["index"]] for r in records]
    assert all(a >= b - 1e-5 for a, b in itertools.pairwise(ranked))


def test_the_key_never_reaches_the_output(cli: RunCli, infinity: Infinity) -> None:
    result = cli(QUERY, *DOCUMENTS, "--base-url", infinity.base_url, "-v", env={"GR_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert KEY not in result.stderr
    assert KEY.encode() not in result.stdout
    assert orjson.loads(result.stdout.splitlines()[0])["rank"] == 1
