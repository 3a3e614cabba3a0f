"""Usage errors in rerank's words, not click's: every bad option value names the option and what
it expects (``-k/--top-k must be a whole number ≥ 1, got 'abc'``), every usage message is one
``rerank: error:`` line followed by where to find help — for the command the user typed."""

from __future__ import annotations

import copy
import math
from typing import Any

# Typer vendors click: its parameters, types and exceptions are these.
from typer._click.core import Command, Context, Parameter
from typer._click.exceptions import (
    BadParameter,
    ClickException,
    MissingParameter,
    NoSuchOption,
)
from typer._click.types import FloatParamType, IntParamType, ParamType, _NumberRangeBase
from typer._types import TyperChoice
from typer.core import TyperCommand

from rerank_cli.settings import values


class Refused(BadParameter):
    """A value the option's type refused, said in full (no "Invalid value for …" around it)."""

    def format_message(self) -> str:
        return self.message


def reword(command: Command) -> None:
    """Give every typed parameter of ``command`` and its subcommands a type that refuses a bad
    value in our words (and a float that is not finite, which click lets through), and every
    command a usage line with its arguments as written (``QUERY [DOCUMENT]...``, not Typer's
    ``{query} [documents]...``)."""
    if type(command) is TyperCommand:
        command.__class__ = _PlainUsage
    for param in command.params:
        if _expected(param.type) is not None:
            kind = copy.copy(param.type)
            kind.__class__ = _worded(type(param.type))
            param.type = kind
    for sub in getattr(command, "commands", {}).values():
        reword(sub)


class _PlainUsage(TyperCommand):
    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = param.human_readable_name
            name = name if param.required else f"[{name}]"
            pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


def who(param: Parameter) -> str:
    """``-k/--top-k``; an argument by its metavar (``QUERY``)."""
    if param.param_type_name == "option":
        return "/".join(sorted(param.opts, key=len))
    return param.human_readable_name


def _expected(kind: ParamType) -> str | None:
    """What a type takes, as a message says it; None for a type that refuses nothing."""
    if isinstance(kind, TyperChoice):
        return "one of " + ", ".join(kind.normalize_choice(c, None) for c in kind.choices)
    if isinstance(kind, IntParamType):
        return "a whole number" + _bounds(kind)
    if isinstance(kind, FloatParamType):
        return "a finite number" + _bounds(kind)
    return None


def _bounds(kind: ParamType) -> str:
    if not isinstance(kind, _NumberRangeBase):
        return ""
    parts = []
    if kind.min is not None:
        parts.append(f"{'>' if kind.min_open else '≥'} {kind.min:g}")
    if kind.max is not None:
        parts.append(f"{'<' if kind.max_open else '≤'} {kind.max:g}")
    return " " + " and ".join(parts) if parts else ""


_WORDED: dict[type[ParamType], type[ParamType]] = {}


def _worded(base: type[ParamType]) -> type[ParamType]:
    """``base`` with a ``convert`` that refuses in our words (one subclass per base)."""
    if base in _WORDED:
        return _WORDED[base]

    class Worded(base):  # type: ignore[valid-type,misc]
        def convert(self, value: Any, param: Parameter | None, ctx: Any) -> Any:
            try:
                result = super().convert(value, param, ctx)
                refused = isinstance(result, float) and not math.isfinite(result)
            except BadParameter:
                refused = True
            if refused:
                expected = _expected(self) or "valid"
                name = who(param) if param is not None else "a value"
                raise Refused(values.problem(name, expected, value), ctx, param) from None
            return result

    Worded.__name__ = Worded.__qualname__ = base.__name__
    _WORDED[base] = Worded
    return Worded


def message(error: ClickException) -> str:
    """One line in our style: ``no such option: --bogus (did you mean --long?)``."""
    if isinstance(error, NoSuchOption):
        text = f"no such option: {error.option_name}"
        if error.possibilities:
            text += f" (did you mean {' or '.join(sorted(error.possibilities))}?)"
        return text
    if isinstance(error, MissingParameter) and error.param is not None:
        text = f"missing {error.param.param_type_name} {who(error.param)}"
        if isinstance(error.param.type, TyperChoice):
            text += f" ({_expected(error.param.type)})"
        return text
    text = error.format_message().strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def help_hint(error: ClickException, default_command: bool) -> str | None:
    """``Try 'rerank files -h' for help.`` — ``rerank -h`` when the user typed ``rerank QUERY …``
    (not the ``rerank rank`` they did not type)."""
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return None
    path = ctx.command_path
    if default_command and path == "rerank rank":
        path = "rerank"
    return f"Try '{path} -h' for help."
