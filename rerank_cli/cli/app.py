"""The Typer app, and the one place where errors become messages and exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from rerank_cli import __version__
from rerank_cli.cli import account as account_cmd
from rerank_cli.cli import cache as cache_cmd
from rerank_cli.cli import config as config_cmd
from rerank_cli.cli import files as files_cmd
from rerank_cli.cli import models as models_cmd
from rerank_cli.cli import profiles as profiles_cmd
from rerank_cli.cli import rank as rank_cmd
from rerank_cli.cli import tasks as tasks_cmd
from rerank_cli.errors import ExitCode, OutputClosed, RerankError
from rerank_cli.redact import redact
from rerank_cli.terminal import Environment

app = typer.Typer(
    name="rerank",
    help="Rank documents by relevance to a query with any /v1/rerank API.\n\n"
    "`rerank QUERY [DOCUMENT …]` is short for `rerank rank QUERY [DOCUMENT …]`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rerank {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Rank documents by relevance to a query with any /v1/rerank API."""


app.command("rank")(rank_cmd.rank)
app.command("files")(files_cmd.files)
app.command("models")(models_cmd.models)
app.command("account")(account_cmd.account)
app.command("profiles")(profiles_cmd.profiles)
app.command("tasks")(tasks_cmd.tasks)
app.add_typer(config_cmd.app, name="config")
app.add_typer(cache_cmd.app, name="cache")


def run(args: Sequence[str], environment: Environment | None = None) -> int:
    env = environment or Environment.from_system()
    try:
        app(args=list(args), prog_name="rerank", obj=env)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else ExitCode.USAGE)
    except (OutputClosed, BrokenPipeError):
        return _quiet_broken_pipe()
    except RerankError as error:
        env.stderr.write(f"rerank: error: {redact(error.message)}\n")
        env.stderr.flush()
        return int(error.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except Exception as error:  # a bug: say so in one line, never as "nothing found" (exit 1)
        if env.env.get("RERANK_DEBUG"):
            raise
        detail = redact(f"{type(error).__name__}: {error}")
        env.stderr.write(
            f"rerank: internal error: {detail} (please report it; RERANK_DEBUG=1 shows where)\n"
        )
        return int(ExitCode.API_FAILED)
    return 0


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): stop quietly, and keep Python from complaining when
    it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return int(ExitCode.OK)
