"""Shared fixtures: run the CLI in-process through its real entry point, with swapped streams."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

import rerank_cli.redact
from rerank_cli.cli import main
from rerank_cli.providers.profile import BUILTIN
from rerank_cli.terminal import Environment

# --- The host's environment, cleaned at import time (subprocesses copy os.environ) --------------

LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"
_KEY_VARIABLES = {"GR_KEY"} | {name for p in BUILTIN.values() for name in p.key_env}


def _changes_results(name: str) -> bool:
    """A host setting that would change what the CLI does: a key or a RERANK_ setting.
    RERANK_REQUIRE_* are the suite's own switches (CI turns skips into failures with them)."""
    upper = name.upper()
    if upper in _KEY_VARIABLES or upper.endswith("_API_KEY"):
        return True
    return upper.startswith("RERANK_") and not upper.startswith("RERANK_REQUIRE_")


for _name in [name for name in os.environ if _changes_results(name)]:
    del os.environ[_name]
# Proxy variables stay as the host has them: the suite must pass behind a proxy. The loopback
# servers are reached directly, as a user behind a proxy reaches local servers.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = LOOPBACK_HOSTS


@pytest.fixture(autouse=True)
def fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty redaction registry per test: a key registered by an earlier test would hide a
    leak in this one (the CLI must register every key it uses itself)."""
    monkeypatch.setattr(rerank_cli.redact, "_secrets", set())


@dataclass
class CliResult:
    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8")

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines on stdout."""
        return [orjson.loads(line) for line in self.stdout.splitlines() if line.strip()]


RunCli = Callable[..., CliResult]


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Variables for a CLI run that sees no user config, cache or key from the outside."""
    return {
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
    }


@pytest.fixture
def cli(isolated_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``cli("query", "doc", stdin=b"…", env={…}, stdout_tty=True)`` → :class:`CliResult`.

    stderr holds both the Environment's stderr and whatever Typer printed itself (usage errors).
    """

    def run(
        *args: str,
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        stdin_tty: bool = False,
        stdout_tty: bool = False,
        stderr_tty: bool = False,
        no_color: bool = False,
        width: int = 100,
    ) -> CliResult:
        environment = Environment(
            stdin=io.BytesIO(stdin),
            stdout=io.BytesIO(),
            stderr=io.StringIO(),
            stdin_isatty=stdin_tty,
            stdout_isatty=stdout_tty,
            stderr_isatty=stderr_tty,
            no_color_env=no_color,
            width=width,
            env={**isolated_env, **(env or {})},
        )
        code = main(list(args), environment)
        captured = capsys.readouterr()
        stdout = environment.stdout.getvalue() + captured.out.encode()  # type: ignore[attr-defined]
        stderr = environment.stderr.getvalue() + captured.err  # type: ignore[attr-defined]
        return CliResult(code, stdout, stderr)

    return run


# --- The loopback rerank server (tests/server.py) ------------------------------------------------

from collections.abc import Iterator  # noqa: E402

from tests.server import RerankServer  # noqa: E402

# Distinctive, so that a test can assert it never appears in any output.
TEST_KEY = "gr-k3y-9f8e7d6c5b4a-SECRET"


@pytest.fixture
def server() -> Iterator[RerankServer]:
    """A fresh loopback rerank server per test, accepting only ``TEST_KEY``; stopped after."""
    with RerankServer(api_key=TEST_KEY) as running:
        yield running


def api_options(server: RerankServer) -> list[str]:
    """The options that point the CLI at ``server``."""
    return ["--base-url", server.base_url]


@pytest.fixture
def api_cli(cli: RunCli, server: RerankServer) -> RunCli:
    """Like ``cli``, against ``server`` with ``GR_KEY=TEST_KEY`` (``env`` may override it) and
    ``--base-url`` appended to the arguments."""

    def run(*args: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> CliResult:
        return cli(*args, *api_options(server), env={"GR_KEY": TEST_KEY, **(env or {})}, **kwargs)

    return run


def without_root_reads(path: Path) -> list[str]:
    """The command prefix that makes a mode-000 file unreadable to the process: nothing for a
    user; for root (CI), ``setpriv`` taking away the capabilities that let root read any file
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and no setpriv to give up reading any file")
    caps = "-dac_override,-dac_read_search"
    prefix = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]
    probe = subprocess.run([*prefix, "cat", str(path)], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("setpriv could not take away root's right to read any file here")
    return prefix
