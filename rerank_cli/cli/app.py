"""The Typer app, and the one place where errors become messages and exit codes."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import IO, Any, cast

import typer
from typer._click.core import Command
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.exceptions import UsageError as ClickUsageError
from typer.exceptions import Abort

from rerank_cli import __version__
from rerank_cli.cli import completion as completion_cmd
from rerank_cli.cli import rank as rank_cmd
from rerank_cli.cli import usage
from rerank_cli.errors import ExitCode, NothingToShow, OutputClosed, RerankError, UsageError
from rerank_cli.redact import redact
from rerank_cli.terminal import Environment

# The subcommands, in the order help lists them: name → (module in rerank_cli.cli, its command
# function, or None for a Typer group the module calls ``app``; whether its EXAMPLES are its
# epilog). SUBCOMMANDS (cli/__init__.py) names the same ones (tests/test_cli_input.py).
COMMANDS: dict[str, tuple[str, str | None, bool]] = {
    "rank": ("rank", "rank", True),
    "files": ("files", "files", True),
    "batch": ("batch", "batch", True),
    "eval": ("eval", "evaluate", True),
    "doctor": ("doctor", "doctor", True),
    "models": ("models", "models", False),
    "account": ("account", "account", False),
    "profiles": ("profiles", "profiles", False),
    "tasks": ("tasks", "tasks", False),
    "completion": ("completion", "completion", False),
    "mcp": ("mcp_command", "mcp", True),
    "config": ("config", None, False),
    "cache": ("cache", None, False),
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rerank {__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Rank documents by relevance to a query with any /v1/rerank API."""


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every subcommand, or with ``only`` that one: a run of one subcommand
    then neither imports the others' modules nor builds their click commands (~a third of
    ``rerank rank``'s start-up). The root's help and shell completion need them all.
    tests/test_cli_app.py checks that a subcommand says the same either way."""
    import importlib

    app = typer.Typer(
        name="rerank",
        help="Rank documents by relevance to a query with any /v1/rerank API.\n\n"
        "`rerank QUERY [DOCUMENT …]` is short for `rerank rank QUERY [DOCUMENT …]`: "
        "`rerank rank -h` lists its options. For a query that is a command's name, write "
        "`rerank -- files …` or `rerank rank files …`.",
        epilog=rank_cmd.EXAMPLES,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for name, (module_name, function, examples) in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"rerank_cli.cli.{module_name}")
        if function is None:
            app.add_typer(module.app, name=name)
        elif examples:
            app.command(name, epilog=module.EXAMPLES)(getattr(module, function))
        else:
            app.command(name)(getattr(module, function))
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole app, for whoever asks for it by name (tests)
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(
    args: Sequence[str], environment: Environment | None = None, *, default_command: bool = False
) -> int:
    """Run the app on ``args`` (already routed: ``rank`` put first when the user left it out,
    ``default_command``) and map what happened to an exit code, printing one line about it."""
    env = environment or Environment.from_system()
    env = replace(env, stdout=cast("IO[bytes]", Output(env.stdout)))
    given: dict[str, Any] = {}  # the parameters the command was called with (-q among them)
    completing = completion_cmd.COMPLETE_VAR in os.environ
    only = args[0] if args and args[0] in COMMANDS and not completing else None
    command = typer.main.get_command(build_app(only))
    usage.reword(command)
    _remember_parameters(command, given)
    if completing:  # the shell asks for completions
        completion_cmd.prepare_request(os.environ)
    try:
        code = command.main(args=list(args), prog_name="rerank", obj=env, standalone_mode=False)
        env.stdout.flush()
    except SystemExit as done:  # completion requests end this way
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else ExitCode.USAGE)
    except NoArgsIsHelpError as error:
        text = error.format_message()  # rich has printed the help itself: ""
        if text:
            env.stdout.write(text.encode() + b"\n")
        return int(ExitCode.USAGE)
    except ClickException as error:
        env.stderr.write(f"rerank: error: {redact(usage.message(error))}\n")
        hint = usage.help_hint(error, default_command)
        if hint and isinstance(error, ClickUsageError):
            env.stderr.write(hint + "\n")
        env.stderr.flush()
        return int(ExitCode.USAGE)
    except Abort:
        return int(ExitCode.INTERRUPTED)
    except (OutputClosed, BrokenPipeError):
        return _quiet_broken_pipe()
    except NothingToShow as nothing:  # not an error: -q says it by the exit code alone
        if not given.get("quiet"):
            env.stderr.write(f"rerank: {redact(nothing.message)}\n")
            env.stderr.flush()
        return int(nothing.exit_code)
    except RerankError as error:
        env.stderr.write(f"rerank: error: {redact(error.message)}\n")
        env.stderr.flush()
        return int(error.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except OSError as error:
        if error.errno not in WRITE_FAILURES:  # not stdout refusing a write: a bug, below
            return _internal_error(env, error)
        # What Rich writes itself (help) does not pass through Output: say it the same way.
        env.stderr.write(f"rerank: error: {write_failure(error)}\n")
        _quiet_broken_pipe()  # the unwritten rest must not fail again at exit
        return int(ExitCode.USAGE)
    except Exception as error:  # a bug: say so in one line, never as "nothing found" (exit 1)
        return _internal_error(env, error)
    return code if isinstance(code, int) else 0


# errno values of a write the device or file system refused: full, over quota, too big, I/O.
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def write_failure(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"cannot write output: {reason[:1].lower()}{reason[1:]}"


def _internal_error(env: Environment, error: Exception) -> int:
    """A bug: said in one line, never as "nothing found" (exit 1)."""
    if env.env.get("RERANK_DEBUG"):
        raise error
    detail = redact(f"{type(error).__name__}: {error}")
    env.stderr.write(
        f"rerank: internal error: {detail} (please report it; RERANK_DEBUG=1 shows where)\n"
    )
    return int(ExitCode.API_FAILED)


def _remember_parameters(command: Command, given: dict[str, Any]) -> None:
    """Have every command note the parameters it is called with in ``given``: whether -q was
    given decides how "nothing to show" ends."""
    if command.callback is not None:
        callback = command.callback

        @functools.wraps(callback)
        def call(*args: Any, **kwargs: Any) -> Any:
            given.update(kwargs)
            return callback(*args, **kwargs)

        command.callback = call
    for sub in getattr(command, "commands", {}).values():
        _remember_parameters(sub, given)


class Output:
    """stdout, whose write errors say so: ``cannot write output: no space left on device``
    (exit 2) rather than an internal error; a closed pipe (``| head``) ends the run quietly,
    whoever wrote (exit 0)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        with _writing():
            return self._stream.write(data)

    def flush(self) -> None:
        with _writing():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise OutputClosed() from None
    except OSError as error:
        raise OutputFailed(write_failure(error)) from None


class OutputFailed(UsageError):
    """stdout refused what was written (a full disk, a quota): exit 2."""


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): stop quietly, and keep Python from complaining when
    it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return int(ExitCode.OK)
