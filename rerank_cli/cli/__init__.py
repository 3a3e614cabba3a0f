"""Entry point. Kept free of heavy imports so ``rerank --version`` answers at once."""

from __future__ import annotations

import sys

from rerank_cli import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs a third of `rerank --version`
if TYPE_CHECKING:
    from collections.abc import Sequence

    from rerank_cli.terminal import Environment

# Subcommands; anything else in first place means the default one, `rank`.
# tests/test_cli_input.py checks this against the Typer app.
SUBCOMMANDS = frozenset(
    {"rank", "config", "files", "cache", "models", "account", "profiles", "tasks"}
)
ROOT_OPTIONS = frozenset({"--help", "-h", "--install-completion", "--show-completion"})


def route(args: Sequence[str]) -> list[str]:
    """``rerank QUERY …`` is ``rerank rank QUERY …``."""
    args = list(args)
    if args and args[0] not in SUBCOMMANDS and args[0] not in ROOT_OPTIONS:
        return ["rank", *args]
    return args


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """Run the CLI; ``environment`` replaces the process's streams and variables (tests)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--version"], ["-V"]):
        line = f"rerank {__version__}\n".encode()
        (environment.stdout if environment else sys.stdout.buffer).write(line)
        return 0
    from rerank_cli import collector
    from rerank_cli.cli.app import run

    with collector.paused():
        return run(route(args), environment)
