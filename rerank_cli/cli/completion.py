"""``rerank completion bash|zsh|fish`` — the shell completion script (Typer's protocol)."""

from __future__ import annotations

from collections.abc import MutableMapping
from enum import Enum
from typing import Annotated

import typer

from rerank_cli.cli import ROOT_OPTIONS, SUBCOMMANDS

# The variable the shell sets to ask rerank for completions (Typer's protocol, named after the
# program).
COMPLETE_VAR = "_RERANK_COMPLETE"


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    ctx: typer.Context,
    shell: Annotated[Shell, typer.Argument(help="The shell.", metavar="SHELL")],
) -> None:
    """Print the completion script for SHELL.

    Load it from the shell's start-up file — bash, ~/.bashrc: `eval "$(rerank completion bash)"`;
    zsh, ~/.zshrc (after compinit): `eval "$(rerank completion zsh)"`; fish:
    `rerank completion fish > ~/.config/fish/completions/rerank.fish`.
    """
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="rerank", complete_var=COMPLETE_VAR, shell=shell.value)
    ctx.obj.stdout.write(script.encode() + b"\n")


def prepare_request(environ: MutableMapping[str, str]) -> None:
    """Ready Typer's completion classes for a request from the shell, and complete
    ``rerank QUERY --eng`` as ``rerank rank QUERY --eng`` (the default command): the words the
    shell sent get ``rank`` after the program name when the first of them, already typed in
    full, is no subcommand."""
    from typer._completion_classes import completion_init

    completion_init()
    name = "COMP_WORDS" if environ.get(COMPLETE_VAR, "").endswith("_bash") else ""
    name = name or "_TYPER_COMPLETE_ARGS"
    words = environ.get(name, "")
    # bash's script joins the words with its IFS, a newline; the others with spaces.
    separator = "\n" if "\n" in words else " "
    parts = words.strip(separator).split(separator)
    if len(parts) < 3 or parts[1] in SUBCOMMANDS or parts[1] in ROOT_OPTIONS:
        return  # no first word typed in full yet, or it is a command of its own
    environ[name] = separator.join([parts[0], "rank", *parts[1:]])
    if name == "COMP_WORDS" and environ.get("COMP_CWORD", "").isdigit():
        environ["COMP_CWORD"] = str(int(environ["COMP_CWORD"]) + 1)
