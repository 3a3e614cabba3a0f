"""`rerank doctor` through the real entry point against the loopback server, in its normal mode
and made to misbehave (scores that ignore the text, silent truncation, refusals); and the
verdicts on scores (core/canaries.py) on their own."""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.core import canaries
from rerank_cli.core.canaries import CANARIES, FAIL, PASS, TEMPLATE_CAUSE, WARN
from rerank_cli.providers import tokens
from tests.conftest import TEST_KEY, CliResult, RunCli
from tests.server import RerankServer, score

CHECKS = ["key", "model", "price", "canaries", "instruction", "long_documents", "batch"]


def posts(server: RerankServer) -> int:
    return sum(r.method == "POST" for r in server.requests)


def clean(result: CliResult) -> CliResult:
    """The key never appears in anything printed, not even in part."""
    for output in (result.stdout.decode("utf-8", "replace"), result.stderr):
        assert TEST_KEY not in output
        assert TEST_KEY[3:15] not in output
    return result


def report(result: CliResult) -> dict[str, Any]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data: dict[str, Any] = orjson.loads(lines[0])
    return data


def rows(result: CliResult) -> dict[str, dict[str, Any]]:
    return {row["check"]: row for row in report(result)["checks"]}


def doctor(api_cli: RunCli, *args: str, **kwargs: Any) -> CliResult:
    return clean(api_cli("doctor", "--max-retries", "0", *args, **kwargs))


# ---------------------------------------------------------------------------------------------
# Through the CLI


def test_a_sound_server_passes_every_check(api_cli: RunCli, server: RerankServer) -> None:
    result = doctor(api_cli)
    assert result.exit_code == 0, result.stderr
    data = report(result)  # a pipe: one JSON object
    assert [row["check"] for row in data["checks"]] == CHECKS  # one object per check
    assert {row["check"]: row["status"] for row in data["checks"]} == dict.fromkeys(CHECKS, PASS)
    assert all(row["reason"] and "\n" not in row["reason"] for row in data["checks"])
    assert data["status"] == PASS
    assert data["model"] == "Qwen/Qwen3-Reranker-0.6B"
    assert data["url"] == server.base_url + "/rerank"
    # What it said it would send (stderr, before), what it sent, and the price it knew.
    assert data["documents_sent"] == server.billed_documents
    assert math.isclose(data["estimated_cost"], server.billed_documents * 0.008 / 1000)
    announced = result.stderr.splitlines()[0]
    assert announced.startswith("rerank: doctor: sending up to ")
    assert "$0.000" in announced
    assert int(announced.split("up to ")[1].split()[0]) >= server.billed_documents
    checked = rows(result)
    assert "12 of 12 pairs" in checked["canaries"]["reason"]
    assert checked["price"]["details"]["per_1k_documents"] == 0.008


def test_scores_that_ignore_the_text_fail_with_the_likely_cause(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.ignore_text = True
    result = doctor(api_cli)
    assert result.exit_code == 1, result.stderr
    checked = rows(result)
    assert checked["canaries"]["status"] == FAIL
    assert checked["canaries"]["reason"].startswith(TEMPLATE_CAUSE)
    # Checks that need meaningful scores are not judged on meaningless ones.
    assert checked["instruction"]["status"] == checked["long_documents"]["status"] == "skip"
    assert report(result)["status"] == FAIL
    assert "failed: canary pairs" in result.stderr


def test_a_server_that_truncates_silently_is_a_warning(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.truncate_tokens = 1000  # words: between the 512- and the 2,048-token probes
    result = doctor(api_cli)
    assert result.exit_code == 0, result.stderr
    checked = rows(result)
    long = checked["long_documents"]
    assert long["status"] == WARN
    assert "the server appears to truncate long documents to between " in long["reason"]
    shortest, cut = (probe["tokens"] for probe in long["details"]["probes"])
    assert shortest <= 512
    assert 1000 < cut <= 2048
    assert f"between {shortest:,} and {cut:,} tokens" in long["reason"]
    assert f"--max-tokens {shortest}" in long["reason"]
    assert all(row["status"] == PASS for name, row in checked.items() if name != "long_documents")
    assert report(result)["status"] == WARN


def test_a_server_that_refuses_long_documents_fails_that_check(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.max_document_tokens = 1500  # a 400 for anything longer
    result = doctor(api_cli)
    assert result.exit_code == 1, result.stderr
    long = rows(result)["long_documents"]
    assert long["status"] == FAIL
    assert "tokens failed (" in long["reason"] and "over 1500" in long["reason"]
    assert "--max-tokens" in long["reason"]


def test_a_rejected_key_is_exit_3(api_cli: RunCli, server: RerankServer) -> None:
    result = doctor(api_cli, env={"GR_KEY": "gr-wrong-0000"})
    assert result.exit_code == 3, result.stderr
    assert "the API key from GR_KEY (gr-…0000) was rejected" in result.stderr
    assert result.stdout == b""


def test_a_dead_server_is_exit_4(cli: RunCli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    result = clean(cli("doctor", "--base-url", url, "--max-retries", "0", env={"GR_KEY": TEST_KEY}))
    assert result.exit_code == 4, result.stderr
    assert f"connection refused by 127.0.0.1:{port}" in result.stderr
    assert result.stdout == b""


def test_dry_run_sends_nothing_and_says_what_it_would(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = doctor(api_cli, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert posts(server) == 0
    assert server.billed_documents == 0
    assert result.stdout == b""
    assert "dry run: doctor would send up to 100 documents in up to 21 requests" in result.stderr
    assert "$0.000800" in result.stderr
    assert "canary pairs: 24 documents in 12 requests" in result.stderr
    # Asked for JSON, the plan is the data.
    planned = orjson.loads(doctor(api_cli, "--dry-run", "-o", "json").stdout)
    assert planned["dry_run"] is True
    assert planned["documents"] == sum(check["documents"] for check in planned["checks"]) == 100
    assert posts(server) == 0


def test_dry_run_needs_no_key(cli: RunCli, server: RerankServer) -> None:
    result = cli("doctor", "--base-url", server.base_url, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert posts(server) == 0


def test_every_run_is_scored_afresh_never_from_the_cache(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    first = doctor(api_cli)
    sent = server.billed_documents
    second = doctor(api_cli)
    assert first.exit_code == second.exit_code == 0
    assert server.billed_documents == 2 * sent
    assert not list(Path(isolated_env["RERANK_CACHE_DIR"]).glob("**/*.sqlite*"))


def test_an_instruction_the_server_drops_is_a_warning(cli: RunCli, server: RerankServer) -> None:
    """vLLM's profile sends the instruction in a field; this server ignores unknown fields."""
    args = ("doctor", "-P", "vllm", "--base-url", server.base_url, "--max-retries", "0")
    result = cli(*args, env={"VLLM_API_KEY": TEST_KEY})
    assert result.exit_code == 0, result.stderr
    instruction = rows(result)["instruction"]
    assert instruction["status"] == WARN
    assert "the server ignores the 'instruction' field" in instruction["reason"]
    assert "--instruction-mode query" in instruction["reason"]


def test_no_instruction_mode_skips_the_instruction_check(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = doctor(api_cli, "--instruction-mode", "none", "--task", "code")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert rows(result)["instruction"]["status"] == "skip"
    assert "dry run" not in result.stderr
    planned = orjson.loads(
        doctor(api_cli, "--instruction-mode", "none", "--dry-run", "-o", "json").stdout
    )
    assert "instruction" not in [check["check"] for check in planned["checks"]]


def test_the_model_name_a_server_ignores_is_a_warning(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.model_required = False  # serves its own model whatever the request names
    result = doctor(api_cli, "-m", "some/other-model")
    assert result.exit_code == 0, result.stderr
    model = rows(result)["model"]
    assert model["status"] == WARN
    assert "GET /models lists only Qwen/Qwen3-Reranker-0.6B" in model["reason"]


def test_max_docs_refuses_before_anything_is_sent(api_cli: RunCli, server: RerankServer) -> None:
    result = doctor(api_cli, "--max-docs", "10")
    assert result.exit_code == 2, result.stderr
    assert "refusing to send 100 documents" in result.stderr
    assert posts(server) == 0


def test_a_terminal_gets_a_table(api_cli: RunCli, server: RerankServer) -> None:
    server.truncate_tokens = 1000
    result = doctor(api_cli, stdout_tty=True, width=100, no_color=True)
    assert result.exit_code == 0, result.stderr
    lines = result.text.splitlines()
    assert lines[0].startswith("Qwen/Qwen3-Reranker-0.6B at http://127.0.0.1:")
    header = next(line for line in lines if line.startswith("check"))
    assert header.split() == ["check", "status", "reason"]
    labels = ("key", "model", "price", "canary pairs", "instruction", "long documents", "batch")
    for label in labels:
        assert any(line.startswith(label) for line in lines), label
    assert any(line.startswith("long documents") and " warn " in line for line in lines)
    assert all(len(line) <= 100 and line == line.rstrip() for line in lines)
    assert "\x1b[" not in result.text  # NO_COLOR
    coloured = doctor(api_cli, stdout_tty=True, width=100)
    assert "\x1b[33mwarn" in coloured.text


def test_lexical_engine_needs_no_server(cli: RunCli) -> None:
    result = cli("doctor", "--engine", "lexical")
    assert result.exit_code in (0, 1), result.stderr
    checked = rows(result)
    assert checked["key"]["status"] == checked["price"]["status"] == PASS
    assert "offline" in checked["key"]["reason"]
    assert checked["instruction"]["status"] == "skip"
    assert checked["batch"]["reason"].startswith("64 documents offline: ")


# ---------------------------------------------------------------------------------------------
# The canaries and the verdicts


def test_the_test_server_orders_every_canary_right() -> None:
    """The loopback server scores by shared words: the canaries are written so that it, like
    any sound reranker, puts the relevant document first."""
    assert len(CANARIES) >= 8
    assert {c.language for c in CANARIES} == {"English", "Chinese", "code"}
    for pair in CANARIES:
        assert score(pair.query, pair.relevant) > score(pair.query, pair.irrelevant) + 0.1, pair


def judged(relevant: list[float], irrelevant: list[float]) -> canaries.Check:
    return canaries.judge_canaries(CANARIES, relevant, irrelevant, qwen3=True)


@settings(max_examples=100, deadline=None)
@given(
    base=st.lists(
        st.floats(min_value=-20, max_value=20), min_size=len(CANARIES), max_size=len(CANARIES)
    ),
    margin=st.floats(min_value=0.5, max_value=10),
)
def test_relevant_above_irrelevant_everywhere_passes(base: list[float], margin: float) -> None:
    check = judged([b + margin for b in base], base)
    assert check.status == PASS
    assert check.details["ordered_right"] == len(CANARIES)


@settings(max_examples=100, deadline=None)
@given(
    level=st.floats(min_value=-10, max_value=10).filter(lambda x: abs(x) > 0.1),
    noise=st.lists(
        st.floats(min_value=0, max_value=1e-4),
        min_size=2 * len(CANARIES),
        max_size=2 * len(CANARIES),
    ),
)
def test_scores_that_barely_vary_fail_whatever_their_order(
    level: float, noise: list[float]
) -> None:
    scores = [level + n for n in noise]
    check = judged(scores[: len(CANARIES)], scores[len(CANARIES) :])
    assert check.status == FAIL
    assert check.reason.startswith(TEMPLATE_CAUSE)


def test_one_pair_wrong_warns_two_fail_all_wrong_is_inverted() -> None:
    n = len(CANARIES)
    good, bad = [0.9] * n, [0.1] * n
    one_wrong = judged([0.05, *good[1:]], bad)
    assert one_wrong.status == WARN
    assert repr(CANARIES[0].query) in one_wrong.reason
    assert judged([0.05, 0.05, *good[2:]], bad).status == FAIL
    inverted = judged(bad, good)
    assert inverted.status == FAIL and "inverted" in inverted.reason
    half = judged([0.9 if i % 2 else 0.05 for i in range(n)], bad)
    assert half.status == FAIL and "chance is half" in half.reason


def test_the_template_hint_is_for_qwen3_only() -> None:
    flat = [0.5] * len(CANARIES)
    assert TEMPLATE_CAUSE in canaries.judge_canaries(CANARIES, flat, flat, qwen3=True).reason
    other = canaries.judge_canaries(CANARIES, flat, flat, qwen3=False).reason
    assert TEMPLATE_CAUSE not in other and "ignore the text" in other


def test_instruction_verdict() -> None:
    spread = [0.0, 1.0]
    assert canaries.judge_instruction([0.2, 0.8], [0.3, 0.7], spread, None, "query").status == PASS
    same = canaries.judge_instruction([0.2, 0.8], [0.2, 0.8 + 1e-4], spread, "instruct", "field")
    assert same.status == WARN and "'instruct' field" in same.reason


def test_probe_lengths_end_near_the_limit() -> None:
    assert canaries.probe_lengths(32_692) == [512, 2048, 8192, 32_660]
    assert canaries.probe_lengths(4096) == [512, 2048, 4064]
    assert canaries.probe_lengths(600) == [568]
    assert canaries.probe_lengths(None) == [512, 2048, 8192]


@pytest.mark.parametrize("total", [128, 512, 3000])
def test_a_long_document_ends_with_the_needle_within_its_length(total: int) -> None:
    for tokenizer in (tokens.EstimateTokenizer(), tokens.tokenizer_for("Qwen/Qwen3-Reranker-0.6B")):
        text = canaries.long_document(tokenizer, total)
        assert text.endswith(canaries.NEEDLE)
        assert total - 40 <= tokenizer.count(text) <= total
        query_words = set(canaries.NEEDLE_QUERY.split())
        filler = text.removesuffix(canaries.NEEDLE)
        assert not query_words & set(filler.lower().replace(".", " ").split())


def test_a_limit_too_small_to_probe_is_skipped(api_cli: RunCli, server: RerankServer) -> None:
    result = doctor(api_cli, "--max-tokens", "40")
    assert result.exit_code == 0, result.stderr
    long = rows(result)["long_documents"]
    assert long["status"] == "skip"
    assert "40 tokens per document is too few to probe" in long["reason"]


def test_seen_is_nearer_the_relevant_score() -> None:
    assert canaries.seen(0.6, relevant=0.9, irrelevant=0.1)
    assert not canaries.seen(0.4, relevant=0.9, irrelevant=0.1)
    assert canaries.seen(-1.0, relevant=2.0, irrelevant=-5.0)  # logits too
