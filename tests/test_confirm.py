"""A large billed run asks first on a terminal (a real pseudo-terminal here), never in a pipe."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import TEST_KEY, RunCli
from tests.server import RerankServer

DOCUMENTS = [f"document {n} about capitals" for n in range(10)]


def on_a_terminal(
    args: Sequence[str], env: dict[str, str], answer: bytes | None, timeout: float = 30
) -> tuple[int, str]:
    """Run ``python -m rerank_cli ARGS`` with a pseudo-terminal as its controlling terminal
    (stdin, stdout and stderr), answer its question with ``answer``, and return the exit code
    and everything it wrote."""
    pid, master = pty.fork()
    if pid == 0:  # the child: becomes the CLI
        os.execve(sys.executable, [sys.executable, "-m", "rerank_cli", *args], env)
    seen = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child is gone (EIO on Linux)
                    break
                if not chunk:
                    break
                seen += chunk
            if answer is not None and not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RERANK_")}
    return {
        **keep,
        "GR_KEY": TEST_KEY,
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "100",
        **extra,
    }


def run_args(server: RerankServer, documents: Path) -> list[str]:
    return ["capitals", "-i", str(documents), "--base-url", server.base_url, "-k", "1"]


def test_a_large_run_asks_and_no_sends_nothing(server: RerankServer, tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n")
    env = environment(tmp_path, RERANK_CONFIRM_OVER="5")
    code, screen = on_a_terminal(run_args(server, documents), env, b"n\n")
    assert "send 10 documents to 127.0.0.1:" in screen
    assert "about $0.00; confirm_over = 5)? [y/N]" in screen
    assert code == 1
    assert "nothing sent" in screen
    assert server.rerank_requests == []


def test_yes_at_the_prompt_goes_ahead(server: RerankServer, tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n")
    env = environment(tmp_path, RERANK_CONFIRM_OVER="5")
    code, screen = on_a_terminal(run_args(server, documents), env, b"y\n")
    assert code == 0, screen
    assert server.billed_documents == 10


def test_a_run_under_the_threshold_is_not_asked(server: RerankServer, tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n")
    code, screen = on_a_terminal(run_args(server, documents), environment(tmp_path), None)
    assert code == 0, screen
    assert "[y/N]" not in screen
    assert [r.path for r in server.requests] == ["/v1/rerank"]  # no price was looked up


def test_a_run_in_a_pipe_is_never_asked(cli: RunCli, server: RerankServer) -> None:
    done = cli(
        "capitals",
        *DOCUMENTS,
        "--base-url",
        server.base_url,
        env={"GR_KEY": TEST_KEY, "RERANK_CONFIRM_OVER": "1"},
    )
    assert done.exit_code == 0, done.stderr
    assert server.billed_documents == 10


def test_yes_skips_the_question(server: RerankServer, tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n")
    env = environment(tmp_path, RERANK_CONFIRM_OVER="5")
    code, screen = on_a_terminal([*run_args(server, documents), "-y"], env, None)
    assert code == 0, screen
    assert "[y/N]" not in screen
    assert server.billed_documents == 10


def test_cache_clear_asks_on_a_terminal(server: RerankServer, tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(DOCUMENTS) + "\n")
    env = environment(tmp_path)
    assert on_a_terminal(run_args(server, documents), env, None)[0] == 0  # 10 scores cached
    code, screen = on_a_terminal(["cache", "clear"], env, b"n\n")
    assert (code, "delete every cached score in" in screen) == (1, True), screen
    assert "nothing deleted" in screen
    code, screen = on_a_terminal(["cache", "clear"], env, b"y\n")
    assert code == 0, screen
    assert "deleted 10 cached scores" in screen
    code, screen = on_a_terminal(["cache", "clear", "-y"], env, None)
    assert code == 0 and "[y/N]" not in screen, screen


def test_cache_clear_in_a_script_is_not_asked(cli: RunCli, server: RerankServer) -> None:
    assert (
        cli("capitals", "a b", "--base-url", server.base_url, env={"GR_KEY": TEST_KEY}).exit_code
        == 0
    )
    done = cli("cache", "clear")
    assert done.exit_code == 0, done.stderr
    assert "deleted 1 cached score" in done.stderr
