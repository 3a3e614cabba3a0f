"""Start-up: what a run loads is what it needs. The fast paths here are second code paths, so
each is checked to say exactly what the plain path says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rerank_cli.cli.app as app_module
from rerank_cli.cli import SUBCOMMANDS
from tests.conftest import TEST_KEY, RunCli
from tests.server import RerankServer

# Each subcommand's help, and a few of its errors: what a run of one subcommand sees.
ARGUMENTS = [
    [*prefix, *tail]
    for prefix in [[name] for name in sorted(SUBCOMMANDS)]
    + [["config", "show"], ["cache", "stats"]]
    for tail in (["--help"], ["--no-such-option"], ["-j"])
] + [["rank"], ["rank", "q", "--top-k", "x"], ["files", "q", "/no/such/path", "--engine", "nope"]]


@pytest.mark.parametrize("args", ARGUMENTS, ids=" ".join)
def test_one_subcommand_built_alone_says_what_the_whole_app_says(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    alone = cli(*args)
    whole_app = app_module.build_app
    monkeypatch.setattr(app_module, "build_app", lambda only=None: whole_app(None))
    whole = cli(*args)
    assert (alone.exit_code, alone.stdout, alone.stderr) == (
        whole.exit_code,
        whole.stdout,
        whole.stderr,
    )


def test_the_whole_app_still_lists_every_subcommand(cli: RunCli) -> None:
    listed = cli("--help").text
    for name in SUBCOMMANDS:
        assert name in listed


FAKE_CLICK = """
def __getattr__(name):  # enough of click for httpx's command line to load
    def factory(*args, **kwargs):
        return lambda function: function
    return factory
"""


def test_httpx_command_line_is_not_loaded_with_click_installed(
    server: RerankServer, tmp_path: Path
) -> None:
    """With click installed, `import httpx` loads httpx's own command line, and rich and
    pygments with it; a ranking never needs them."""
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "__init__.py").write_text(FAKE_CLICK)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from rerank_cli.cli import main\n"
        "code = main(['q', 'doc one', 'doc two', '--no-cache',"
        f" '--base-url', {server.base_url!r}])\n"
        "print(code, 'httpx' in sys.modules, sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('pygments', 'rich')), file=sys.stderr)\n"
    )
    env = {
        "GR_KEY": TEST_KEY,
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
        "NO_PROXY": "127.0.0.1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.count("\n") == 2  # two JSON lines
    assert done.stderr.strip().splitlines()[-1] == "0 True []"
