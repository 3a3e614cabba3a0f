"""The wire format: rerank_cli/protocol.py in isolation, and the test server (tests/server.py)
speaking it — the server is the reference the client is tested against, so it is tested too."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from rerank_cli.engines.api import protocol
from rerank_cli.errors import BadResponse
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer, prefer_wait, score

MODEL = "Qwen/Qwen3-Reranker-0.6B"

# --- protocol.build_request / sizes --------------------------------------------------------------


def test_request_body_is_model_query_documents() -> None:
    body = protocol.build_request(MODEL, "q", ["a", "b"])
    assert orjson.loads(body) == {"model": MODEL, "query": "q", "documents": ["a", "b"]}
    assert list(orjson.loads(body)) == ["model", "query", "documents"]


def test_request_size_estimate_never_undercounts() -> None:
    texts = ["plain", 'quote " and \\ backslash', "tab\tnewline\n", "ünïcødé 東京 🎉"]
    estimate = protocol.request_overhead(MODEL, "q") + sum(map(protocol.document_cost, texts))
    assert estimate >= len(protocol.build_request(MODEL, "q", texts))


def test_request_with_lone_surrogate_is_still_valid_json() -> None:
    # What a non-UTF-8 command-line argument becomes in Python (surrogateescape).
    body = protocol.build_request(MODEL, "q", ["caf\udce9"])
    assert orjson.loads(body)["documents"] == ["caf\ufffd"]


# --- protocol.parse_response: accepted shapes ----------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"results": [{"index": 1, "relevance_score": 0.2}, {"index": 0, "relevance_score": 0.9}]},
        {"results": [{"index": 1, "score": 0.2}, {"index": 0, "score": 0.9}]},
        {"data": [{"index": 0, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.2}]},
        [{"index": 0, "score": 0.9}, {"index": 1, "score": 0.2}],
        {
            "id": "x",
            "results": [
                {"index": 0, "relevance_score": 0.9, "document": {"text": "a"}, "extra": 1},
                {"index": 1, "relevance_score": 0.2, "document": "b"},
            ],
            "usage": {"total_tokens": 3},
        },
    ],
    ids=["gigarouter", "score-key", "voyage-data", "tei-bare-list", "extra-keys-ignored"],
)
def test_accepted_shapes_give_scores_in_document_order(payload: Any) -> None:
    assert protocol.parse_response(orjson.dumps(payload), 2) == [0.9, 0.2]


def test_integer_scores_are_accepted_as_floats() -> None:
    scores = protocol.parse_response(b'{"results": [{"index": 0, "relevance_score": 1}]}', 1)
    assert scores == [1.0]
    assert isinstance(scores[0], float)


# --- protocol.parse_response: rejected -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"results": [', "invalid JSON"),
        (b'{"results": [{"index": 0, "relevance_score": NaN}]}', "index 0 has a non-finite score"),
        (
            b'{"results": [{"index": 0, "relevance_score": Infinity}]}',
            "index 0 has a non-finite score",
        ),
        (
            b'{"results": [{"index": 0, "relevance_score": 1e999}]}',
            "index 0 has a non-finite score",
        ),
        (b'{"scores": [0.5]}', "no results list"),
        (b'"ok"', "no results list"),
        (b'{"results": [0.5]}', "not an object"),
        (b'{"results": [{"relevance_score": 0.5}]}', "no integer index"),
        (b'{"results": [{"index": "0", "relevance_score": 0.5}]}', "no integer index"),
        (b'{"results": [{"index": true, "relevance_score": 0.5}]}', "no integer index"),
        (b'{"results": [{"index": 1, "relevance_score": 0.5}]}', "out of range"),
        (b'{"results": [{"index": -1, "relevance_score": 0.5}]}', "out of range"),
        (
            b'{"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "score": 0.1}]}',
            "appears twice",
        ),
        (b'{"results": [{"index": 0, "relevance_score": "high"}]}', "no numeric score"),
        (b'{"results": [{"index": 0, "relevance_score": null}]}', "no numeric score"),
        (b'{"results": [{"index": 0}]}', "no numeric score"),
        (b'{"results": []}', "1 of 1 documents have no score"),
    ],
)
def test_bad_responses_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadResponse) as caught:
        protocol.parse_response(body, 1)
    message = str(caught.value)
    assert message.startswith("unexpected response from API: ")
    assert reason in message
    assert body.decode() in message  # short bodies are quoted whole


def test_fewer_results_than_documents_is_rejected() -> None:
    body = b'{"results": [{"index": 0, "relevance_score": 0.5}]}'
    with pytest.raises(BadResponse, match="1 of 2 documents have no score"):
        protocol.parse_response(body, 2)


def test_a_long_body_is_quoted_to_200_characters() -> None:
    body = orjson.dumps({"results": [{"index": i, "relevance_score": 0.5} for i in range(50)]})
    with pytest.raises(BadResponse) as caught:
        protocol.parse_response(body, 10)
    message = str(caught.value)
    quoted = message.split(": ", 2)[2]
    assert quoted == body[:200].decode() + "…"


# --- protocol.error_message / error_retry_after --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"code": "x", "message": "model is busy"}}', "model is busy"),
        (b'{"error": "plain words"}', "plain words"),
        (b'{"message": "cohere style"}', "cohere style"),
        (b'{"detail": "Unauthorized"}', "Unauthorized"),
        (
            b'{"detail": [{"msg": "field required"}, {"msg": "too short"}]}',
            "field required; too short",
        ),
        (b"upstream exploded", "upstream exploded"),
        (b"", None),
        (b"[1, 2]", None),
    ],
)
def test_error_message_reads_every_provider_shape(body: bytes, message: str | None) -> None:
    assert protocol.error_message(body) == message


def test_error_message_of_a_long_text_body_is_cut() -> None:
    said = protocol.error_message(b"x" * 1000)
    assert said == "x" * 200 + "…"


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        (b'{"error": {"message": "busy", "retry_after_s": 2.5}}', 2.5),
        (b'{"error": {"retry_after_s": 0}}', 0.0),
        (b'{"error": {"retry_after_s": -1}}', None),
        (b'{"error": {"retry_after_s": "2"}}', None),
        (b'{"error": "busy"}', None),
        (b"not json", None),
    ],
)
def test_error_retry_after(body: bytes, seconds: float | None) -> None:
    assert protocol.error_retry_after(body) == seconds


# --- the server's score --------------------------------------------------------------------------


def test_score_ranks_the_answer_above_an_unrelated_document() -> None:
    paris = score("capital of France", "Paris is the capital of France.")
    bananas = score("capital of France", "Bananas are yellow.")
    assert paris > 0.9
    assert 0.0 <= bananas < 0.01


def test_score_is_deterministic_and_overlap_dominates_the_tie_break() -> None:
    assert score("a b", "a") == score("a b", "a")
    assert score("a b", "b x") != score("a b", "a y")  # the tie-break separates equal overlap
    assert min(score("a b", f"a b {i}") for i in range(100)) > max(
        score("a b", f"a {i}") for i in range(100)
    )


def test_prefer_wait_parsing() -> None:
    assert prefer_wait("wait=30") == 30
    assert prefer_wait("respond-async, wait=5") == 5
    assert prefer_wait("Wait = 7") == 7
    assert prefer_wait("return=minimal") is None
    assert prefer_wait(None) is None


# --- the server over HTTP ------------------------------------------------------------------------


def post(server: RerankServer, payload: Any, key: str | None = TEST_KEY, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{server.base_url}/rerank", json=payload, headers=headers, timeout=10)


def body(documents: list[str], model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "query": "capital of France", "documents": documents}


DOCS = ["Bananas are yellow.", "Paris is the capital of France.", "France"]


def test_rerank_answers_sorted_results_and_bills(server: RerankServer) -> None:
    response = post(server, body(DOCS))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [1, 2, 0]
    assert results[0]["relevance_score"] == score("capital of France", DOCS[1])
    assert server.billed_documents == 3
    assert server.batch_sizes == [3]


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [(None, 401, "unauthorized"), ("gr-wrong", 401, "unauthorized")],
)
def test_rerank_requires_the_key(
    server: RerankServer, key: str | None, status: int, code: str
) -> None:
    response = post(server, body(DOCS), key=key)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert server.billed_documents == 0


def test_unknown_model_is_404_and_bad_bodies_are_400(server: RerankServer) -> None:
    assert post(server, body(DOCS, model="nope")).status_code == 404
    assert post(server, {"model": MODEL, "query": 1, "documents": ["a"]}).status_code == 400
    assert post(server, body([])).status_code == 400
    assert post(server, [1]).status_code == 400


def test_out_of_credit_is_402(server: RerankServer) -> None:
    server.out_of_credit = True
    response = post(server, body(DOCS))
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credit"


@pytest.mark.parametrize("status", [413, 400, 422])
def test_too_many_documents(server: RerankServer, status: int) -> None:
    server.max_documents, server.too_many_status = 2, status
    response = post(server, body(DOCS))
    assert response.status_code == status
    assert "too many documents" in response.json()["error"]["message"]
    assert post(server, body(DOCS[:2])).status_code == 200


def test_response_shapes(server: RerankServer) -> None:
    server.shape = "data"
    assert [r["index"] for r in post(server, body(DOCS)).json()["data"]] == [1, 2, 0]
    server.shape = "tei"
    assert [set(r) for r in post(server, body(DOCS)).json()] == [{"index", "score"}] * 3


def test_stats_endpoint(server: RerankServer) -> None:
    post(server, body(DOCS))
    post(server, body(DOCS[:1]))
    stats = httpx.get(f"{server.url}/_stats").json()
    assert stats["rerank_requests"] == 2
    assert stats["billed_documents"] == 4
    assert stats["max_in_flight"] == 1
    assert 0 < stats["last_answered"] - stats["first_received"] < 60


def test_models_lists_pricing(server: RerankServer) -> None:
    models = httpx.get(f"{server.base_url}/models").json()["data"]
    by_id = {m["id"]: m for m in models}
    assert set(by_id) == {
        "Qwen/Qwen3-Reranker-0.6B",
        "cross-encoder/ms-marco-MiniLM-L6-v2",
        "BAAI/bge-reranker-base",
    }
    assert by_id[MODEL]["pricing"] == {"price": 0.008, "unit": "1k documents", "currency": "USD"}


def test_account_balance_is_debited(server: RerankServer) -> None:
    before = httpx.get(f"{server.url}/account", params={"key": TEST_KEY}).json()["balance"]
    post(server, body(["x"] * 1000))
    after = httpx.get(f"{server.url}/account", params={"key": TEST_KEY}).json()["balance"]
    assert math.isclose(before - after, 0.008)
    assert httpx.get(f"{server.url}/account", params={"key": "gr-bad"}).status_code == 401


def test_requests_are_recorded_with_headers_and_connection(server: RerankServer) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {TEST_KEY}"}) as client:
        for _ in range(3):
            client.post(f"{server.base_url}/rerank", json=body(DOCS), headers={"Prefer": "wait=9"})
    recorded = server.rerank_requests
    assert [r.prefer_wait for r in recorded] == [9, 9, 9]
    assert recorded[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert recorded[0].body == body(DOCS)
    assert len({r.connection for r in recorded}) == 1  # keep-alive: one connection


# --- faults --------------------------------------------------------------------------------------


def test_faults_are_consumed_one_per_request(server: RerankServer) -> None:
    server.add_faults(
        Fault.error(503, "warming", headers={"Retry-After": "3"}, retry_after_s=3),
        Fault.error(429, body=b"slow down"),
    )
    first = post(server, body(DOCS))
    assert first.status_code == 503
    assert first.headers["retry-after"] == "3"
    assert first.json() == {
        "error": {"code": "model_loading", "message": "warming", "retry_after_s": 3}
    }
    second = post(server, body(DOCS))
    assert (second.status_code, second.content) == (429, b"slow down")
    assert post(server, body(DOCS)).status_code == 200
    assert server.billed_documents == 3


def test_fail_first(server: RerankServer) -> None:
    server.fail_first(2, Fault.error(500))
    assert [post(server, body(DOCS)).status_code for _ in range(3)] == [500, 500, 200]


def test_dropped_connection_gets_no_answer(server: RerankServer) -> None:
    server.add_faults(Fault.dropped())
    with pytest.raises(httpx.RemoteProtocolError):
        post(server, body(DOCS))


def test_truncated_body_is_cut_short(server: RerankServer) -> None:
    server.add_faults(Fault.truncated())
    with pytest.raises(httpx.RemoteProtocolError):
        post(server, body(DOCS))


def test_slow_answer_times_out(server: RerankServer) -> None:
    server.add_faults(Fault.slow(5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server.base_url}/rerank",
            json=body(DOCS),
            headers={"Authorization": f"Bearer {TEST_KEY}"},
            timeout=0.2,
        )


def test_nan_is_written_as_a_bare_token(server: RerankServer) -> None:
    server.add_faults(Fault.nan_score())
    raw = post(server, body(DOCS)).content
    assert b'"relevance_score": NaN' in raw
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault.missing_index(), lambda rs: any("index" not in r for r in rs)),
        (Fault.duplicate_index(), lambda rs: len({r["index"] for r in rs}) < len(rs)),
        (Fault.index_out_of_range(), lambda rs: max(r["index"] for r in rs) == 3),
        (Fault.fewer_results(), lambda rs: len(rs) == 2),
    ],
    ids=["missing", "duplicate", "out-of-range", "fewer"],
)
def test_bad_index_faults(server: RerankServer, fault: Fault, check: Any) -> None:
    server.add_faults(fault)
    assert check(post(server, body(DOCS)).json()["results"])


def test_malformed_body(server: RerankServer) -> None:
    server.add_faults(Fault.malformed())
    with pytest.raises(json.JSONDecodeError):
        post(server, body(DOCS)).json()


def test_cold_model_answers_503_unless_prefer_wait_covers_the_warm_up(
    server: RerankServer,
) -> None:
    # Cold for long enough that no request below can outlive it, however slow the machine.
    server.make_cold(30.0)
    cold = post(server, body(DOCS))
    assert cold.status_code == 503
    assert 29 <= int(cold.headers["retry-after"]) <= 30  # whole seconds, rounded up
    assert 0 < cold.json()["error"]["retry_after_s"] <= 30.0
    assert post(server, body(DOCS), Prefer="wait=5").status_code == 503  # 5 s do not cover it
    # A short warm-up that the wait covers: the request is held, then answered.
    server.make_cold(0.2)
    assert post(server, body(DOCS), Prefer="wait=5").status_code == 200


def test_hold_until_in_flight_proves_overlap(server: RerankServer) -> None:
    import concurrent.futures

    server.hold_until_in_flight(3)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda _: post(server, body(DOCS)).status_code, range(3)))
    assert statuses == [200] * 3
    assert server.max_in_flight == 3


def test_stop_releases_a_slow_request_and_closes_connections() -> None:
    running = RerankServer().start()
    running.add_faults(Fault.slow(60))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(running, body(DOCS), key=None)
        except httpx.HTTPError as error:
            errors.append(error)

    thread = threading.Thread(target=call, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while not running.requests and time.monotonic() < deadline:
            thread.join(0.01)
        assert running.requests, "the request never reached the server"
    finally:
        running.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1  # the held request ended without an answer


def test_server_runs_as_a_process() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server", "--port", "0", "--api-key", TEST_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    # A server that never prints would block readline for ever: kill it after a while, which
    # ends the read (the same kill is the cleanup below if the test fails).
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        response = httpx.post(
            f"{base_url}/rerank",
            json=body(DOCS),
            headers={"Authorization": f"Bearer {TEST_KEY}"},
            timeout=10,
        )
        assert [r["index"] for r in response.json()["results"]] == [1, 2, 0]
    finally:
        watchdog.cancel()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
