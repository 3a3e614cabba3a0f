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
    {
        "rank",
        "batch",
        "eval",
        "config",
        "files",
        "cache",
        "models",
        "account",
        "profiles",
        "tasks",
        "completion",
        "doctor",
        "mcp",
    }
)
ROOT_OPTIONS = frozenset({"--help", "-h"})


class Mistyped(Exception):
    """The first argument looks like a misspelt subcommand (``confg``): refused, not ranked."""

    def __init__(self, word: str, command: str) -> None:
        super().__init__(
            f"did you mean {command!r}? "
            f"(to rank with the query {word!r}, use: rerank rank {word} …)"
        )


def route(args: Sequence[str]) -> list[str]:
    """``rerank QUERY …`` is ``rerank rank QUERY …``; ``rerank -- QUERY …`` too, whatever the
    query. A first argument that is one word a typo away from a subcommand raises
    :class:`Mistyped`: ``rerank confg show`` would otherwise be a paid query."""
    args = list(args)
    if not args or args[0] in SUBCOMMANDS or args[0] in ROOT_OPTIONS:
        return args
    close = near_subcommand(args[0])
    if close:
        raise Mistyped(args[0], close)
    return ["rank", *args]


def near_subcommand(word: str) -> str | None:
    """The subcommand ``word`` is a typo of, or None. A typo is one edit: a letter dropped or
    added, two neighbours swapped (``confg``, ``cahce``, ``rnak``) — or, for names of six
    letters or more, one letter changed (``confug``); a one-letter change of a short name is
    as likely a word of its own (``bank``, ``match``, ``tiles``). Only a single word of letters
    can be one: a query with a space, a digit or a dash is never taken for a command."""
    if not (word.isascii() and word.isalpha()):
        return None
    word = word.lower()
    for name in sorted(SUBCOMMANDS):
        if abs(len(name) - len(word)) > 1:
            continue
        distance = _edits(word, name)
        if distance == 0:  # ``Config``: the command, in other letters' case
            return name
        if distance != 1:
            continue
        changed = (
            len(word) == len(name) and sum(x != y for x, y in zip(word, name, strict=True)) == 1
        )
        if not changed or len(name) >= 6:
            return name
    return None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    neighbours each count one (``cahce`` is one edit from ``cache``)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def main(argv: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """Run the CLI; ``environment`` replaces the process's streams and variables (tests)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--version"], ["-V"]):
        line = f"rerank {__version__}\n".encode()
        stdout = environment.stdout if environment else sys.stdout.buffer
        try:
            stdout.write(line)
            stdout.flush()
        except BrokenPipeError:
            return 0
        except OSError as error:  # /dev/full: said as every other write failure is
            stderr = environment.stderr if environment else sys.stderr
            reason = error.strerror or str(error)
            stderr.write(f"rerank: error: cannot write output: {reason[:1].lower()}{reason[1:]}\n")
            return 2
        return 0
    try:
        routed = route(args)
    except Mistyped as refused:
        stderr = environment.stderr if environment else sys.stderr
        stderr.write(f"rerank: error: {refused}\n")
        return 2
    # `import httpx` also imports httpx's own command line (httpx._main) whenever click is
    # installed, and with it rich's console, progress, syntax and table and pygments' lexers:
    # ~50-90 ms of start-up for a command line this process never runs. None in sys.modules
    # makes that one import fail, and httpx carries on as it does without click (its `main` a
    # stub). An httpx already imported (tests, a host program) is left as it is.
    if "httpx" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    from rerank_cli import collector
    from rerank_cli.cli.app import run

    with collector.paused():
        return run(routed, environment, default_command=len(routed) > len(args))
