"""Options shared by several commands: the settings' options, derived from the settings table
(:func:`setting_options`), and the others (output, filters, dry run, stats), declared once here
as annotated types."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Annotated, Any, Optional, TypeVar, get_args

import typer

from rerank_cli.settings.schema import API, COST, MODEL, SPECS, SWITCHES, Spec, from_overrides

INPUT = "Input"
OUTPUT = "Output"
# Shared panels, in the order --help shows them (after a command's own: Input, Files).
PANELS = (API, OUTPUT, COST, MODEL)

F = TypeVar("F", bound=Callable[..., Any])


class InputFormat(str, Enum):
    auto = "auto"
    lines = "lines"
    jsonl = "jsonl"
    json = "json"
    grep = "grep"
    rg_json = "rg-json"
    nul = "nul"
    paragraphs = "paragraphs"


class OutputFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    json = "json"
    plain = "plain"
    tsv = "tsv"


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def _out(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=OUTPUT, **kwargs)


def _cost(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=COST, **kwargs)


# `Optional[...]`, not `X | None`: Typer reads these annotations at run time on Python 3.10.
OutputOpt = Annotated[
    Optional[OutputFormat],  # noqa: UP045
    _out(
        "--output",
        "-o",
        help="Output format [default: table on a terminal, else jsonl].",
        show_default=False,
    ),
]


class ReportFormat(str, Enum):
    """A command whose output is one report (eval, doctor): a table, or one JSON object."""

    table = "table"
    json = "json"


ReportOpt = Annotated[
    Optional[ReportFormat],  # noqa: UP045
    _out(
        "--output",
        "-o",
        help="Output format [default: table on a terminal, else json].",
        show_default=False,
    ),
]
TopKOpt = Annotated[
    Optional[int],  # noqa: UP045
    _out("--top-k", "-k", help="Show the best N only.", min=1, metavar="N", show_default=False),
]
MinScoreOpt = Annotated[
    Optional[float],  # noqa: UP045
    _out(
        "--min-score",
        "-s",
        help="Show results scoring at least SCORE only.",
        metavar="SCORE",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    _out("--quiet", "-q", help="Print no results; the exit code tells (0 results, 1 none)."),
]
VerboseOpt = Annotated[bool, _out("--verbose", "-v", help="A summary on stderr at the end.")]
PartialOpt = Annotated[
    bool,
    _out(
        "--partial",
        help="When the API fails part-way, print what was scored, then the rest marked "
        "unscored (plain: left out); still exits with the error's code.",
    ),
]
ColorOpt = Annotated[Color, _out("--color", help="Colour (NO_COLOR is honoured).")]
DryRunOpt = Annotated[
    bool,
    _cost(
        "--dry-run",
        help="Read, dedup and check the cache, then report what would be sent and its price; "
        "send nothing.",
    ),
]
YesOpt = Annotated[
    bool,
    _cost(
        "--yes",
        "-y",
        help="Don't ask on the terminal before sending more than confirm_over documents "
        "[config; default 20000].",
    ),
]
StatsOpt = Annotated[
    Optional[str],  # noqa: UP045
    _cost(
        "--stats",
        help="Write a JSON usage summary to FILE (- for stderr).",
        metavar="FILE",
        show_default=False,
    ),
]


# ---------------------------------------------------------------------------------------------
# The settings' options, derived from rerank_cli.settings.schema


@functools.cache
def _choices(spec: Spec) -> type[Enum]:
    """A str Enum of the setting's choices, which Typer shows as ``<a|b>`` and checks."""
    return Enum(spec.name.title().replace("_", ""), {c: c for c in spec.choices}, type=str)  # type: ignore[return-value]


def _setting_parameters(spec: Spec) -> list[inspect.Parameter]:
    """The options of one setting: ``--batch-size`` (None: not given), and its switches
    (``--no-cache``: False, not given)."""
    parameters = []
    if spec.flags:
        kind: Any = _choices(spec) if spec.choices else spec.kind
        bound: dict[str, Any] = {}
        if spec.minimum is not None:
            bound["min"] = float(spec.minimum) if spec.kind is float else int(spec.minimum)
        option = typer.Option(
            *spec.flags,
            help=spec.help,
            rich_help_panel=spec.panel,
            show_default=False,
            metavar=spec.metavar,
            **bound,
        )
        annotation = Annotated[Optional[kind], option]  # noqa: UP045
        parameters.append(_keyword(spec.name, annotation, None))
    for switch in spec.switches:
        option = typer.Option(
            switch.flag,
            help=switch.help or spec.help,
            rich_help_panel=spec.panel,
            show_default=False,
        )
        parameters.append(_keyword(switch.name, Annotated[bool, option], False))
    return parameters


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default
    )


def _panel(parameter: inspect.Parameter) -> str | None:
    for extra in get_args(parameter.annotation)[1:]:
        panel = getattr(extra, "rich_help_panel", None)
        if panel:
            return str(panel)
    return None


def _arrange(
    own: list[inspect.Parameter], settings: list[inspect.Parameter]
) -> list[inspect.Parameter]:
    """The command's parameters and the settings' options in --help order: the command's own
    panels first, then API, Output, Cost, Model; within a shared panel, the settings' options
    right after the command's first one there (``--dry-run``, settings, ``--stats``)."""
    groups: list[list[inspect.Parameter]] = [[] for _ in range(len(PANELS) + 1)]

    def group(parameter: inspect.Parameter) -> list[inspect.Parameter]:
        panel = _panel(parameter)
        return groups[PANELS.index(panel) + 1 if panel in PANELS else 0]

    for parameter in own:
        group(parameter).append(parameter)
    for panel in PANELS:
        ours = [p for p in settings if _panel(p) == panel]
        shared = groups[PANELS.index(panel) + 1]
        if shared:
            shared[1:1] = ours  # after the command's first: --dry-run, the settings, --stats
        else:
            shared.extend(ours)
    return [parameter for members in groups for parameter in members]


def setting_options(*names: str) -> Callable[[F], F]:
    """Give a command one typed option per setting (all, or those named) in place of its
    ``**settings`` parameter, which receives them: not given → None, enums as their values.
    A value the table refuses (``--base-url ftp://x``) is a usage error naming the option."""
    unknown = set(names) - set(SPECS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    specs = [spec for spec in SPECS.values() if not names or spec.name in names]
    generated = [parameter for spec in specs for parameter in _setting_parameters(spec)]
    taken = {parameter.name for parameter in generated}

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [
            parameter
            for parameter in signature.parameters.values()
            if parameter.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        parameters = _arrange(own, generated)

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {
                name: value.value if isinstance(value, Enum) else value
                for name, value in kwargs.items()
                if name in taken
            }
            from_overrides(given, label=_flag)  # refuse a bad value in the option's words
            own_values = {name: value for name, value in kwargs.items() if name not in taken}
            return command(*args, **own_values, **given)

        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        wrapper.__annotations__["return"] = signature.return_annotation
        return wrapper  # type: ignore[return-value]

    return decorate


def _flag(name: str) -> str:
    """``batch_size`` → ``--batch-size``; ``no_cache`` → ``--no-cache``."""
    if name in SWITCHES:
        return SWITCHES[name][1].flag
    return SPECS[name].option if name in SPECS else name


def job_options(ctx: typer.Context, params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~rerank_cli.jobs.execution.JobOptions` fields from a ranking command's
    parameters (its ``locals()``, ``settings`` among them): the shared options are declared
    once, here, and read once."""
    from rerank_cli.core.pipeline import Filters
    from rerank_cli.settings import load

    env = ctx.obj
    env.color_mode = params["color"].value
    output = params["output"]
    return {
        "settings": load(env.env, params["settings"]),
        "output": output.value if output else None,
        "filters": Filters(top_k=params["top_k"], min_score=params["min_score"]),
        "quiet": params["quiet"],
        "verbose": params["verbose"],
        "dry_run": params["dry_run"],
        "stats_path": params["stats"],
        "yes": params["yes"],
        "partial": params.get("partial", False),  # rank and files
    }
