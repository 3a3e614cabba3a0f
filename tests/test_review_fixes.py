"""Behaviours a code review found missing: secrets behind symlinks, keys and passwords in
errors, malformed URLs, non-UTF-8 file names, auto-detection of log lines, the too-large rule,
and the early key check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rerank_cli.engines.api.client import _TOO_LARGE
from tests.conftest import TEST_KEY, RunCli
from tests.server import Fault, RerankServer

LEX = ("--engine", "lexical")


def test_a_symlink_to_a_secret_is_never_read(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("API_TOKEN=sk-live-TOPSECRET token secret\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("an ordinary token secret text\n")
    (tmp_path / "src" / "settings.txt").symlink_to(tmp_path / ".env")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("token secret in git config\n")
    (tmp_path / "repo_meta").symlink_to(tmp_path / ".git")
    monkeypatch.chdir(tmp_path)
    walked = cli("files", "token secret", ".", *LEX, "-o", "jsonl", "-L")
    assert [r["path"] for r in walked.records()] == ["./src/a.txt"]
    assert "TOPSECRET" not in walked.text
    named = cli("files", "token secret", "src/settings.txt", *LEX)
    assert named.exit_code == 1 and "looks like a secret" in named.stderr


@pytest.mark.parametrize(
    "url", ["http://[::1/v1", "http://127.0.0.1:abc/v1", "http://127.0.0.1:99999/v1", "ftp://x/v1"]
)
def test_a_malformed_base_url_is_a_usage_error(cli: RunCli, url: str) -> None:
    result = cli("q", "d", "--base-url", url, env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 2
    assert (
        result.stderr.startswith("rerank: error: --base-url") and "Traceback" not in result.stderr
    )


def test_account_never_sends_a_key_in_clear_text_even_with_the_lexical_engine(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("no connection may be attempted")

    monkeypatch.setattr("socket.socket.connect", refuse)
    result = cli(
        "account",
        "--base-url",
        "http://192.0.2.1:9/v1",
        env={"GR_KEY": TEST_KEY, "RERANK_ENGINE": "lexical"},
    )
    assert result.exit_code == 2
    assert "clear text" in result.stderr and TEST_KEY not in result.stderr


def test_a_password_in_the_base_url_never_appears(api_cli: RunCli, server: RerankServer) -> None:
    url = server.base_url.replace("http://", "http://alice:hunter2pass@")
    server.add_faults(Fault.error(402, "no credit"))
    result = api_cli("q", "d", "--base-url", url)
    assert result.exit_code == 3
    assert "hunter2pass" not in result.stderr and "out of credit at 127.0.0.1" in result.stderr


def test_an_undecodable_file_name_is_shown_with_replacement(cli: RunCli, tmp_path: Path) -> None:
    name = os.path.join(os.fsencode(tmp_path), b"bad\xffname.txt")
    with open(name, "wb") as handle:
        handle.write(b"hello world\n")
    shown = os.fsdecode(name)
    for fmt in ("jsonl", "table"):
        result = cli("hello", "-i", shown, *LEX, "-o", fmt)
        assert result.exit_code == 0, result.stderr
        assert "bad\ufffdname.txt" in result.text


def test_log_lines_in_brackets_are_lines_not_a_json_array(cli: RunCli, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("[INFO] server started\n[2026-01-01 12:00] disk full on /var\n")
    result = cli("disk problems", "-i", str(log), *LEX)
    assert result.exit_code == 0, result.stderr
    assert result.records()[0]["text"] == "[2026-01-01 12:00] disk full on /var"
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  "a",,\n]\n')
    assert cli("q", "-i", str(broken), *LEX).exit_code == 2  # an array that is broken says so


@pytest.mark.parametrize(
    ("message", "too_large"),
    [
        ("too many documents: 5 > 3 per request", True),
        ("Request Entity Too Large", True),
        ("batch size 64 > maximum allowed batch size 32", True),
        ("Number of documents exceeds the limit of 32", True),
        ("query exceeds the maximum length of 512 tokens", False),
        ("model not found", False),
    ],
)
def test_only_size_messages_split_a_batch(message: str, too_large: bool) -> None:
    assert bool(_TOO_LARGE.search(message)) is too_large


def test_a_query_too_long_is_not_split_down_to_single_documents(
    api_cli: RunCli, server: RerankServer
) -> None:
    server.add_faults(Fault.error(400, "query exceeds the maximum length of 512 tokens"))
    result = api_cli("q", *[f"doc {i}" for i in range(8)])
    assert result.exit_code == 3
    assert len(server.rerank_requests) == 1
    assert "query exceeds the maximum length" in result.stderr


def test_a_missing_key_is_reported_before_the_input_is_read(cli: RunCli) -> None:
    result = cli("q", "-i", "/nonexistent/input.txt")  # read first, this would be exit 2
    assert result.exit_code == 3 and "no API key" in result.stderr
