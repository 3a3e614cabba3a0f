"""The process environment: standard streams, terminals, colour and width.

Everything that asks "is this a terminal?" asks an :class:`Environment`, so tests can swap in
byte buffers and pretend to be a terminal or a pipe.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Literal

ColorMode = Literal["auto", "always", "never"]


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    stdin: IO[bytes]
    stdout: IO[bytes]
    stderr: IO[str]
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    color_mode: ColorMode = "auto"
    no_color_env: bool = False
    width: int = 100
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_system(cls) -> Environment:
        return cls(
            stdin=sys.stdin.buffer,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color_env=bool(os.environ.get("NO_COLOR")),
            width=shutil.get_terminal_size((100, 24)).columns,
            env=dict(os.environ),
        )

    def _color(self, isatty: bool) -> bool:
        if self.color_mode == "always":
            return True
        if self.color_mode == "never" or self.no_color_env:
            return False
        return isatty

    @property
    def stdout_color(self) -> bool:
        return self._color(self.stdout_isatty)

    @property
    def stderr_color(self) -> bool:
        return self._color(self.stderr_isatty)

    def warn(self, message: str) -> None:
        """One line on stderr, prefixed, redacted."""
        from rerank_cli.redact import redact

        self.stderr.write(f"rerank: warning: {redact(message)}\n")
        self.stderr.flush()

    def ask(self, question: str) -> bool | None:
        """A yes/no question on the controlling terminal (stdin may be the data): True for
        y/yes, False for anything else; None when there is no terminal to ask on."""
        try:
            with (
                open("/dev/tty", "w", encoding="utf-8") as out,
                open("/dev/tty", encoding="utf-8", errors="replace") as answers,
            ):
                out.write(f"rerank: {question} [y/N] ")
                out.flush()
                answer = answers.readline()
        except OSError:
            return None
        return answer.strip().lower() in ("y", "yes")

    def info(self, message: str) -> None:
        from rerank_cli.redact import redact

        self.stderr.write(f"rerank: {redact(message)}\n")
        self.stderr.flush()


@contextmanager
def progress_bar(env: Environment, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr, only when stderr is a terminal; yields the callback the
    pipeline reports ``(done, total)`` to, or None."""
    if not (enabled and env.stderr_isatty):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    # Only built for a terminal (checked above): say so, whatever stream stands in for it.
    console = Console(file=env.stderr, force_terminal=True, no_color=not env.stderr_color)
    with Progress(
        BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("scoring", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
