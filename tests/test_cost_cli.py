"""What a run costs, through the real entry point against the loopback server: the priced
--dry-run, the --max-docs/--max-cost budgets, the batch tier, and the usage summary (-v,
--stats), each checked against what the server then saw and billed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from rerank_cli.settings.resolution import DEFAULT_MODEL
from tests.conftest import TEST_KEY, CliResult, RunCli
from tests.server import Fault, RerankServer

QUERY = "capital of France"
PRICE = 0.008  # USD per 1,000 documents: the server's price of the default model
DOCS = [f"Paris is the capital of France, fact {i}" for i in range(7)] + [
    f"Bananas are yellow, fact {i}" for i in range(5)
]
TEXTS = [*DOCS, DOCS[0], DOCS[5]]  # 14 records, 12 unique
FAST_RETRY = {"retry-after-ms": "1"}


def cost(documents: int) -> float:
    return documents * PRICE / 1000


def error_line(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("rerank: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("rerank: error: ")


def paths(server: RerankServer) -> list[str]:
    return [request.path for request in server.requests]


def write_config(isolated_env: dict[str, str], text: str) -> None:
    config = Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


@pytest.fixture
def partly_cached(api_cli: RunCli, server: RerankServer) -> RerankServer:
    """The first four documents are in the cache already (and were billed)."""
    assert api_cli(QUERY, *DOCS[:4]).exit_code == 0
    assert server.billed_documents == 4
    return server


# --- --dry-run -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "requests"),
    [([], 1), (["--batch-size", "3"], 3), (["--max-request-bytes", "160"], 5)],
)
def test_dry_run_reports_what_the_real_run_then_bills(
    api_cli: RunCli, partly_cached: RerankServer, tmp_path: Path, options: list[str], requests: int
) -> None:
    server = partly_cached
    seen = len(server.requests)
    dry = api_cli(QUERY, *TEXTS, *options, "--dry-run")
    assert (dry.exit_code, dry.stdout) == (0, b""), dry.stderr
    assert dry.stderr == (
        f"rerank: dry run: 14 documents, 12 unique, 4 cached, 8 to send in {requests} request"
        f"{'s' * (requests != 1)}, "
        f"estimated ${cost(8):.6f}\n"
    )
    assert paths(server)[seen:] == ["/v1/models"]  # the price; no /rerank
    assert server.billed_documents == 4

    stats_file = tmp_path / "stats.json"
    real = api_cli(QUERY, *TEXTS, *options, "--stats", str(stats_file))
    assert real.exit_code == 0, real.stderr
    assert server.billed_documents - 4 == 8
    assert len(server.rerank_requests) - 1 == requests
    stats = orjson.loads(stats_file.read_bytes())
    assert (stats["billed"], stats["requests"]) == (8, requests)
    assert stats["estimated_cost"] == pytest.approx(cost(8))


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_dry_run_as_one_json_object_on_stdout(
    api_cli: RunCli, partly_cached: RerankServer, fmt: str
) -> None:
    dry = api_cli(QUERY, *TEXTS, "--batch-size", "3", "--dry-run", "-o", fmt)
    assert (dry.exit_code, dry.stderr) == (0, "")
    assert dry.stdout.count(b"\n") == 1
    report = orjson.loads(dry.stdout)
    assert report == {
        "documents": 14,
        "unique": 12,
        "cached": 4,
        "to_send": 8,
        "requests": 3,
        "price_per_1k": PRICE,
        "estimated_cost": pytest.approx(cost(8)),
        "refused": None,
    }
    assert len(partly_cached.rerank_requests) == 1  # the fixture's run only


@pytest.mark.parametrize("fmt", ["table", "plain", "tsv"])
def test_dry_run_reports_on_stderr_for_other_formats(
    api_cli: RunCli, server: RerankServer, fmt: str
) -> None:
    dry = api_cli(QUERY, *DOCS, "--dry-run", "-o", fmt, stdout_tty=fmt == "table")
    assert (dry.exit_code, dry.stdout) == (0, b"")
    assert dry.stderr.startswith("rerank: dry run: 12 documents, 12 unique, 0 cached, 12 to send")
    assert server.rerank_requests == []


def test_dry_run_of_a_cached_input_makes_no_request_at_all(
    api_cli: RunCli, server: RerankServer
) -> None:
    assert api_cli(QUERY, *DOCS).exit_code == 0
    seen = len(server.requests)
    dry = api_cli(QUERY, *TEXTS, "--dry-run", "-o", "json")
    report = orjson.loads(dry.stdout)
    assert (report["cached"], report["to_send"], report["requests"]) == (12, 0, 0)
    assert report["estimated_cost"] == 0
    assert len(server.requests) == seen


@pytest.mark.parametrize("mode", ["--no-cache", "--refresh"])
def test_dry_run_counts_nothing_cached_when_the_cache_is_not_read(
    api_cli: RunCli, partly_cached: RerankServer, mode: str
) -> None:
    report = orjson.loads(api_cli(QUERY, *TEXTS, mode, "--dry-run", "-o", "json").stdout)
    assert (report["cached"], report["to_send"]) == (0, 12)


def test_dry_run_of_files_counts_unique_chunks(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    body = "".join(f"retries line {n}\n" for n in range(100))  # chunks 1-60 and 51-100
    for name in ("a.txt", "b.txt"):  # the same text twice: two files, two unique chunks
        (tmp_path / name).write_text(body)
    dry = api_cli("files", "retries", "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.stderr
    report = orjson.loads(dry.stdout)
    assert (report["documents"], report["unique"], report["to_send"]) == (2, 2, 2)
    assert server.rerank_requests == []
    assert api_cli("files", "retries").exit_code == 0
    assert server.billed_documents == report["to_send"]


def test_dry_run_price_unknown_when_the_model_is_not_listed(
    api_cli: RunCli, server: RerankServer
) -> None:
    del server.models[DEFAULT_MODEL]
    dry = api_cli(QUERY, *DOCS, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "estimated price unknown" in dry.stderr
    assert f"{DEFAULT_MODEL} has no per-document price listed" in dry.stderr
    report = orjson.loads(api_cli(QUERY, *DOCS, "--dry-run", "-o", "json").stdout)
    assert (report["price_per_1k"], report["estimated_cost"]) == (None, None)
    assert report["to_send"] == 12
    assert server.rerank_requests == []


def test_dry_run_price_unknown_when_the_listing_fails(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.api_key = "gr-another-key-entirely"  # so GET /models answers 401 to ours
    dry = api_cli(QUERY, *DOCS, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "estimated price unknown (GET /models failed" in dry.stderr
    assert TEST_KEY not in dry.stderr
    assert paths(server) == ["/v1/models"]  # one quick try, no retries


# --- budgets -------------------------------------------------------------------------------------


def budget(
    source: str, name: str, value: str, isolated_env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """(options, environment) that set the budget ``name`` from ``source``."""
    if source == "option":
        return [f"--{name.replace('_', '-')}", value], {}
    if source == "environment":
        return [], {f"RERANK_{name.upper()}": value}
    write_config(isolated_env, f"{name} = {value}\n")
    return [], {}


@pytest.mark.parametrize("source", ["option", "environment", "config"])
def test_max_docs_refuses_before_sending_anything(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str], source: str
) -> None:
    args, env = budget(source, "max_docs", "11", isolated_env)
    refused = api_cli(QUERY, *TEXTS, *args, env=env)
    assert (refused.exit_code, refused.stdout) == (2, b"")
    message = error_line(refused)
    assert "refusing to send 12 documents" in message
    assert "11" in message
    assert "nothing was sent" in message
    assert server.requests == []

    args, env = budget(source, "max_docs", "12", isolated_env)  # at the limit: go ahead
    result = api_cli(QUERY, *TEXTS, *args, env=env)
    assert result.exit_code == 0, result.stderr
    assert len(result.records()) == 14
    assert server.billed_documents == 12


@pytest.mark.parametrize("source", ["option", "environment", "config"])
def test_max_cost_refuses_before_sending_anything(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str], source: str
) -> None:
    args, env = budget(source, "max_cost", "0.00009", isolated_env)  # 12 documents: $0.000096
    refused = api_cli(QUERY, *TEXTS, *args, env=env)
    assert (refused.exit_code, refused.stdout) == (2, b"")
    message = error_line(refused)
    assert f"refusing to spend an estimated ${cost(12):.6f} on 12 documents" in message
    assert "9e-05" in message
    assert server.rerank_requests == []

    args, env = budget(source, "max_cost", "0.0001", isolated_env)
    result = api_cli(QUERY, *TEXTS, *args, env=env)
    assert result.exit_code == 0, result.stderr
    assert server.billed_documents == 12


def test_the_option_overrides_a_budget_in_the_config(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    write_config(isolated_env, "max_docs = 1\nmax_cost = 0\n")
    assert api_cli(QUERY, *DOCS).exit_code == 2
    result = api_cli(QUERY, *DOCS, "--max-docs", "100", "--max-cost", "1")
    assert result.exit_code == 0, result.stderr
    assert server.billed_documents == 12


def test_budgets_count_only_what_the_cache_does_not_answer(
    api_cli: RunCli, partly_cached: RerankServer
) -> None:
    server = partly_cached
    result = api_cli(QUERY, *TEXTS, "--max-docs", "8", "--max-cost", str(cost(8)))
    assert result.exit_code == 0, result.stderr
    assert server.billed_documents == 4 + 8
    seen = len(server.requests)
    cached = api_cli(QUERY, *TEXTS, "--max-docs", "0", "--max-cost", "0")  # under any budget
    assert cached.exit_code == 0, cached.stderr
    assert len(cached.records()) == 14
    assert len(server.requests) == seen  # no /rerank, and no price lookup either


def test_max_cost_with_an_unknown_price_refuses(api_cli: RunCli, server: RerankServer) -> None:
    del server.models[DEFAULT_MODEL]
    refused = api_cli(QUERY, *DOCS, "--max-cost", "100")
    assert refused.exit_code == 2
    assert "unknown" in error_line(refused)
    assert server.rerank_requests == []


def test_budgets_in_rerank_files(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for n in range(3):
        (tmp_path / f"{n}.txt").write_text(f"file {n} about retries\n")
    refused = api_cli("files", "retries", "--max-docs", "2")
    assert refused.exit_code == 2
    assert "refusing to send 3 documents" in error_line(refused)
    assert server.rerank_requests == []
    assert api_cli("files", "retries", "--max-cost", "1").exit_code == 0
    assert server.billed_documents == 3


# --- the batch tier ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "config", "tier"),
    [
        ([], {}, "", None),
        (["--tier", "realtime"], {}, "", None),
        (["--tier", "batch"], {}, "", "batch"),
        ([], {"RERANK_TIER": "batch"}, "", "batch"),
        ([], {}, 'tier = "batch"\n', "batch"),
        (["--tier", "realtime"], {}, 'tier = "batch"\n', None),
    ],
)
def test_the_batch_tier_header(
    api_cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    args: list[str],
    env: dict[str, str],
    config: str,
    tier: str | None,
) -> None:
    write_config(isolated_env, config)
    result = api_cli(QUERY, *DOCS, "--batch-size", "5", *args, env=env)
    assert result.exit_code == 0, result.stderr
    assert len(server.rerank_requests) == 3
    assert [r.headers.get("x-tier") for r in server.rerank_requests] == [tier] * 3


def test_an_unknown_tier_is_a_usage_error(api_cli: RunCli, server: RerankServer) -> None:
    assert api_cli(QUERY, *DOCS, "--tier", "fast").exit_code == 2
    assert api_cli(QUERY, *DOCS, env={"RERANK_TIER": "fast"}).exit_code == 2
    assert server.requests == []


def test_the_tier_does_not_change_the_score_so_the_cache_serves_both(
    api_cli: RunCli, server: RerankServer
) -> None:
    assert api_cli(QUERY, *DOCS).exit_code == 0
    batch = api_cli(QUERY, *DOCS, "--tier", "batch")
    assert batch.exit_code == 0, batch.stderr
    assert server.billed_documents == 12


# --- the usage summary ---------------------------------------------------------------------------


def retried_run(api_cli: RunCli, server: RerankServer, *args: str) -> CliResult:
    """All of TEXTS in batches of 3 over a partly cached input, the first request retried."""
    server.add_faults(Fault.error(503, "warming up", headers=FAST_RETRY))
    result = api_cli(QUERY, *TEXTS, "--batch-size", "3", "-j", "1", *args)
    assert result.exit_code == 0, result.stderr
    assert len(result.records()) == 14
    return result


def expected_usage(server: RerankServer, first_request: int) -> dict[str, Any]:
    """The --stats values the server's own records imply for this run."""
    requests = server.rerank_requests[first_request:]
    return {
        "documents": 14,
        "unique": 12,
        "cache_hits": 4,
        "billed": server.billed_documents - 4,
        "requests": len(requests),
        "retries": 1,
        "bytes_sent": sum(len(r.raw) for r in requests),
        "estimated_cost": pytest.approx(cost(8)),
    }


def test_verbose_prints_the_summary_on_stderr(api_cli: RunCli, partly_cached: RerankServer) -> None:
    result = retried_run(api_cli, partly_cached, "-v")
    *_, last = result.stderr.splitlines()
    assert last.startswith("rerank: 14 documents, 12 unique, 4 cached, 8 scored by api, ")
    assert "4 requests, 1 retry," in last
    assert f"estimated ${cost(8):.6f}" in last
    assert partly_cached.billed_documents == 4 + 8


def test_stats_file_matches_what_the_server_counted(
    api_cli: RunCli, partly_cached: RerankServer, tmp_path: Path
) -> None:
    stats_file = tmp_path / "usage.json"
    result = retried_run(api_cli, partly_cached, "--stats", str(stats_file))
    # Nothing but the first retry's notice (later ones only with -v)
    assert (
        result.stderr == "rerank: HTTP 503 (warming up); retrying in 0.0 s (-v shows each retry)\n"
    )
    stats = orjson.loads(stats_file.read_bytes())
    assert stats == {
        **expected_usage(partly_cached, 1),
        "elapsed_seconds": stats["elapsed_seconds"],
        "skipped": 0,
        "texts": 14,
    }
    assert stats["billed"] == 8
    assert isinstance(stats["elapsed_seconds"], float) and stats["elapsed_seconds"] > 0


def test_stats_to_stderr(api_cli: RunCli, partly_cached: RerankServer) -> None:
    result = retried_run(api_cli, partly_cached, "--stats", "-")
    *_, last = result.stderr.splitlines()
    stats = orjson.loads(last)
    for name, value in expected_usage(partly_cached, 1).items():
        assert stats[name] == value, name
    assert all(set(r) >= {"rank", "score", "text"} for r in result.records())  # stdout: data


def test_stats_of_a_fully_cached_run(api_cli: RunCli, server: RerankServer) -> None:
    assert api_cli(QUERY, *DOCS).exit_code == 0
    result = api_cli(QUERY, *TEXTS, "--stats", "-")
    stats = orjson.loads(result.stderr.splitlines()[-1])
    assert {k: stats[k] for k in ("cache_hits", "billed", "requests", "bytes_sent")} == {
        "cache_hits": 12,
        "billed": 0,
        "requests": 0,
        "bytes_sent": 0,
    }
    assert stats["estimated_cost"] == 0


@pytest.mark.parametrize(
    ("stop", "estimated"),
    [
        ("--dry-run", cost(8)),
        ("--max-cost=0.00000001", cost(8)),  # the figure the refusal gave
        ("--max-docs=3", None),  # no price was needed, none was asked for
    ],
)
def test_stats_are_written_when_the_run_stops_before_scoring(
    api_cli: RunCli,
    partly_cached: RerankServer,
    tmp_path: Path,
    stop: str,
    estimated: float | None,
) -> None:
    stats_file = tmp_path / "usage.json"
    result = api_cli(QUERY, *TEXTS, stop, "--stats", str(stats_file))
    assert result.exit_code == (0 if stop == "--dry-run" else 2), result.stderr
    stats = orjson.loads(stats_file.read_bytes())
    assert (stats["documents"], stats["unique"], stats["cache_hits"]) == (14, 12, 4)
    assert (stats["billed"], stats["requests"]) == (0, 0)
    assert stats["estimated_cost"] == (None if estimated is None else pytest.approx(estimated))
    if stop.startswith("--max-cost"):
        assert f"${estimated:.6f}" in result.stderr


def test_stats_of_a_failed_run_count_what_was_billed(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    stats_file = tmp_path / "usage.json"
    server.add_faults(Fault(), Fault.error(400, "bad request"))
    result = api_cli(QUERY, *DOCS, "--batch-size", "5", "-j", "1", "--stats", str(stats_file))
    assert result.exit_code == 3
    stats = orjson.loads(stats_file.read_bytes())
    assert (stats["billed"], stats["requests"]) == (server.billed_documents, 2) == (5, 2)
    assert stats["estimated_cost"] == pytest.approx(cost(5))
    assert stats["elapsed_seconds"] > 0


def test_stats_cost_is_null_when_the_price_is_unknown(
    api_cli: RunCli, server: RerankServer
) -> None:
    class Unlisted(dict[str, tuple[str, float]]):
        """Served models the listing does not show."""

        def items(self) -> Any:
            return iter(())

    server.models = Unlisted(server.models)
    result = api_cli(QUERY, *DOCS, "--stats", "-", "-v")
    assert result.exit_code == 0, result.stderr
    summary, stats = result.stderr.splitlines()[-2:]
    assert orjson.loads(stats)["estimated_cost"] is None
    assert orjson.loads(stats)["billed"] == server.billed_documents == 12
    assert "12 scored by api" in summary
    assert "estimated" not in summary


def test_an_unwritable_stats_file_is_a_usage_error_before_anything_is_sent(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    unwritable = str(tmp_path / "no-such-dir" / "s.json")
    for extra in ((), ("--max-docs", "1")):
        result = api_cli(QUERY, *DOCS, *extra, "--stats", unwritable)
        assert result.exit_code == 2
        assert "cannot write --stats file" in error_line(result)
    assert server.rerank_requests == []
    assert server.billed_documents == 0


def test_a_dry_run_needs_no_key_and_says_when_the_real_run_would_be_refused(
    cli: RunCli, server: RerankServer
) -> None:
    args = (QUERY, *DOCS, "--base-url", server.base_url, "--dry-run", "--max-docs", "3")
    dry = cli(*args)  # no GR_KEY at all
    assert dry.exit_code == 0
    assert "12 to send" in dry.stderr
    assert "the real run would stop: refusing to send 12 documents" in dry.stderr
    report = orjson.loads(cli(*args, "-o", "json").stdout)
    assert report["refused"].startswith("refusing to send 12 documents")
    assert server.rerank_requests == []
