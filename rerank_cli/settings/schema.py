"""The one table of settings: :class:`Settings`, each field declared with :func:`setting`.

A row gives the type (``Literal[...]`` or ``choices`` for a fixed set), the default, the
environment variable (``RERANK_<NAME>`` unless told otherwise), the command-line flags and
switches, the help text and panel, the metavar and the bounds. Everything else is derived from
it: :data:`SPECS` (one :class:`Spec` per setting, its parser included), the reading of the
environment (:func:`from_env`), of the config file (:func:`from_config`) and of overrides
(:func:`from_overrides`, for the command line, ``rerank config set`` and the Python API), and the
Typer options of every command that takes settings (``rerank_cli.cli.options``).

Fields declared without :func:`setting` (``api_key_origin``, ``backoff_*``) are resolved state or
internal knobs: neither options nor config keys.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import (
    Any,
    Literal,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)
from urllib.parse import urlsplit

from rerank_cli.engines.registry import ENGINES
from rerank_cli.errors import UsageError
from rerank_cli.providers.instructions import MODES, TASKS
from rerank_cli.providers.profile import BUILTIN, DEFAULT_PROFILE, Profile
from rerank_cli.settings import values
from rerank_cli.settings.values import Invalid, Parser

T = TypeVar("T")

# Help panels (``rerank rank --help``)
API = "API"
COST = "Cost and cache"
MODEL = "Model and provider"

DEFAULT_BASE_URL = BUILTIN[DEFAULT_PROFILE].base_url
DEFAULT_MODEL = BUILTIN[DEFAULT_PROFILE].model
_METADATA = "rerank_setting"


@dataclass(frozen=True)
class Switch:
    """A flag that sets its setting to ``value`` (``--no-cache`` → ``cache = "off"``). Its name
    as an override is the flag's (``no_cache``)."""

    flag: str
    value: Any
    help: str = ""  # "": the setting's

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Spec:
    """One setting: what its row in :class:`Settings` says, completed from the field's name and
    type by :func:`_complete` (``name``, ``kind``, ``choices``, ``default``, ``parse``)."""

    help: str
    panel: str
    flags: tuple[str, ...]  # command-line option names, the long one first; () for none
    switches: tuple[Switch, ...]
    env: str | None  # environment variable, or None ("" until completed: RERANK_<NAME>)
    metavar: str | None
    minimum: float | None
    choices: tuple[str, ...]  # the allowed values (from a Literal type, or given)
    kind: type | None  # what an option carries: str, int, float or bool (choices are str)
    check: Parser | None  # a parser of the row's own (URLs)
    secret: bool
    name: str = ""
    default: Any = None
    parse: Parser = values.text

    @property
    def option(self) -> str:
        """How the command line spells it: ``--batch-size``."""
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")


@overload
def setting(
    default: T,
    *,
    help: str,
    panel: str = ...,
    flags: tuple[str, ...] = ...,
    switches: tuple[Switch, ...] = ...,
    env: str | None = ...,
    metavar: str | None = ...,
    minimum: float | None = ...,
    choices: tuple[str, ...] = ...,
    kind: type | None = ...,
    check: Parser | None = ...,
    secret: bool = ...,
) -> T: ...
@overload
def setting(
    *,
    factory: Callable[[], T],
    help: str,
    panel: str = ...,
    flags: tuple[str, ...] = ...,
    switches: tuple[Switch, ...] = ...,
    env: str | None = ...,
    metavar: str | None = ...,
    minimum: float | None = ...,
    choices: tuple[str, ...] = ...,
    kind: type | None = ...,
    check: Parser | None = ...,
    secret: bool = ...,
) -> T: ...
def setting(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    help: str,
    panel: str = API,
    flags: tuple[str, ...] = (),
    switches: tuple[Switch, ...] = (),
    env: str | None = "",
    metavar: str | None = None,
    minimum: float | None = None,
    choices: tuple[str, ...] = (),
    kind: type | None = None,
    check: Parser | None = None,
    secret: bool = False,
) -> Any:
    """A :class:`Settings` field that is a setting. ``env=""``: ``RERANK_<NAME>``; None: no
    variable. ``kind``: the value type when the field's is not it (the profile is named by a
    string). ``check``: a parser of its own (URLs)."""
    row = Spec(help, panel, flags, switches, env, metavar, minimum, choices, kind, check, secret)
    metadata = {_METADATA: row}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Settings:
    engine: str = setting(  # the choices are the registry's: an engine is added there only
        "api",
        choices=tuple(ENGINES),
        flags=("--engine",),
        help="; ".join(f"{name}: {spec.summary}" for name, spec in ENGINES.items())
        + " [default api].",
    )
    profile: Profile = setting(  # noqa: RUF009  (a field specifier, like field())
        factory=lambda: BUILTIN[DEFAULT_PROFILE],
        kind=str,
        flags=("--profile", "-P"),
        panel=MODEL,
        metavar="NAME",
        help="Provider profile: gigarouter [default], cohere, jina, voyage, vllm, tei, infinity, "
        "siliconflow, dashscope, together, novita, llamacpp, or one from the config (rerank "
        "profiles).",
    )
    base_url: str = setting(
        DEFAULT_BASE_URL,
        check=values.url,
        flags=("--base-url",),
        metavar="URL",
        help="API base URL [env RERANK_BASE_URL; default https://gigarouter.ai/v1].",
    )
    model: str = setting(
        DEFAULT_MODEL,
        flags=("--model", "-m"),
        metavar="NAME",
        help="Model [env RERANK_MODEL; default Qwen/Qwen3-Reranker-0.6B].",
    )
    # The key's variables are the profile's (GR_KEY, RERANK_API_KEY for gigarouter).
    api_key: str | None = setting(
        None,
        env=None,
        secret=True,
        flags=("--api-key",),
        metavar="KEY",
        help="API key (prefer env GR_KEY or RERANK_API_KEY: options show in ps).",
    )
    api_key_origin: str | None = None  # where the key came from, for messages (never the value)
    batch_size: int = setting(
        64,
        minimum=1,
        flags=("--batch-size",),
        metavar="N",
        help="Documents per request [default 64].",
    )
    max_request_bytes: int = setting(
        4_000_000,
        minimum=1,
        flags=("--max-request-bytes",),
        metavar="BYTES",
        help="Request body budget in bytes [default 4000000].",
    )
    concurrency: int = setting(
        4,
        minimum=1,
        flags=("--concurrency", "-j"),
        metavar="N",
        help="Requests in flight [default 4].",
    )
    max_retries: int = setting(
        6,
        minimum=0,
        flags=("--max-retries",),
        metavar="N",
        help="Retries per request on network errors, 408/409/425/429/5xx [default 6].",
    )
    timeout: float = setting(
        60.0,
        minimum=0.001,
        flags=("--timeout",),
        metavar="SECONDS",
        help="Seconds per request [default 60].",
    )
    wait_cold: int = setting(
        30,
        minimum=0,
        flags=("--wait-cold",),
        metavar="SECONDS",
        help="Ask the server to hold a request up to SECONDS while a cold model warms "
        "(Prefer: wait=SECONDS; 0: off) [default 30].",
    )
    allow_insecure: bool = setting(
        False,
        env=None,
        switches=(Switch("--allow-insecure", True),),
        help="Allow sending the key over plain http:// to another host.",
    )
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_docs: int | None = setting(
        None,
        minimum=0,
        flags=("--max-docs",),
        panel=COST,
        metavar="N",
        help="Refuse (exit 2, nothing sent) a run that would send more than N documents.",
    )
    # `rerank mcp` only (its --max-docs; the config key and variable are mcp_max_docs). A
    # limit on one tool call's size, counted before dedup and cache, so that an agent cannot
    # make one call walk a home directory or send a huge list: 1,000 chunks cover ~1,000
    # small files or ~50,000 lines (60-line chunks overlapping by 10), cost at most $0.008 on
    # gigarouter, and are far more than one question needs.
    mcp_max_docs: int = setting(
        1000,
        minimum=1,
        panel=COST,
        help="rerank mcp: refuse a tool call that would score more than N documents or file "
        "chunks [default 1000].",
    )
    # Config and environment only (-y/--yes answers it on the command line).
    confirm_over: int = setting(
        20_000,
        minimum=0,
        panel=COST,
        help="On a terminal, ask before sending more than N documents (0: never ask).",
    )
    max_cost: float | None = setting(
        None,
        minimum=0,
        flags=("--max-cost",),
        panel=COST,
        metavar="USD",
        help="Refuse (exit 2, nothing sent) a run estimated to cost more than USD.",
    )
    tier: Literal["realtime", "batch"] = setting(
        "realtime",
        flags=("--tier",),
        panel=COST,
        help="gigarouter: batch sends X-Tier: batch — cheaper, slower when busy "
        "[default realtime].",
    )
    # on: read and write · refresh: write only · off: neither
    cache: Literal["on", "refresh", "off"] = setting(
        "on",
        switches=(
            Switch("--no-cache", "off", "Neither read nor write the score cache."),
            Switch("--refresh", "refresh", "Score again and overwrite the cache (do not read it)."),
        ),
        panel=COST,
        help="The score cache: on (read and write), refresh (write only) or off.",
    )
    cache_ttl: float | None = setting(
        None,
        minimum=0,
        flags=("--cache-ttl",),
        panel=COST,
        metavar="DAYS",
        help="Cached scores older than DAYS are misses [default: no expiry].",
    )
    # The instruction in effect: -I, else a --task preset's (each level: instruction first).
    instruction: str | None = setting(
        None,
        flags=("--instruction", "-I"),
        panel=MODEL,
        metavar="TEXT",
        help="Task instruction for instruction-aware models (Qwen3).",
    )
    task: str | None = setting(  # the preset the instruction came from, if it did
        None,
        choices=tuple(TASKS),
        flags=("--task",),
        panel=MODEL,
        help="A preset instruction (rerank tasks lists them).",
    )
    instruction_mode: str = setting(  # default: the profile's
        "query",
        choices=MODES,
        flags=("--instruction-mode",),
        panel=MODEL,
        help="How the instruction reaches the model: a request field, inside the query, the "
        "full Qwen3 prompt built here (template), or not at all [default: the profile's].",
    )
    max_tokens: int | None = setting(  # per document; None: the profile's limit for the query
        None,
        minimum=1,
        flags=("--max-tokens",),
        panel=MODEL,
        metavar="N",
        help="Tokens per document [default: the model's context minus the query and prompt].",
    )
    long: Literal["chunk", "truncate", "error"] = setting(
        "chunk",
        flags=("--long",),
        panel=MODEL,
        help="A document over --max-tokens: score every window and keep the best (chunk), "
        "keep its first N tokens (truncate), or stop (error) [default chunk].",
    )
    # Tokens shared by consecutive windows of a long document; None: 64, at most a quarter of
    # a window (so that a small --max-tokens alone is no error).
    chunk_overlap: int | None = setting(
        None,
        minimum=0,
        flags=("--chunk-overlap",),
        panel=MODEL,
        metavar="N",
        help="Tokens shared by consecutive windows [default 64, or a quarter of --max-tokens "
        "if smaller].",
    )

    @property
    def rerank_url(self) -> str:
        return self.base_url.rstrip("/") + self.profile.path

    @property
    def host(self) -> str:
        """``host[:port]`` for messages: never the ``user:password@`` a URL may carry."""
        netloc = urlsplit(self.base_url).netloc
        return netloc.rpartition("@")[2] or self.base_url

    @property
    def display_url(self) -> str:
        """The base URL for messages, without credentials."""
        parts = urlsplit(self.base_url)
        return parts._replace(netloc=self.host).geturl() if parts.netloc else self.base_url


# ---------------------------------------------------------------------------------------------
# Derived from the table


def _value_type(hint: Any) -> tuple[type, tuple[str, ...]]:
    """``int | None`` → (int, ()); ``Literal["a", "b"]`` → (str, ("a", "b"))."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if get_origin(hint) is Literal:
        return str, tuple(get_args(hint))
    return hint, ()


def _parser(kind: type, choices: tuple[str, ...], row: Spec) -> Parser:
    if row.check is not None:
        return row.check
    if choices:
        return values.choice(choices)
    if kind is bool:
        return values.boolean
    if kind is int:
        return values.whole(None if row.minimum is None else int(row.minimum))
    if kind is float:
        return values.number(row.minimum)
    return values.text


def _complete(cls: type) -> dict[str, Spec]:
    hints = get_type_hints(cls)
    specs = {}
    for item in fields(cls):
        row = item.metadata.get(_METADATA)
        if row is None:
            continue
        kind, choices = _value_type(hints[item.name])
        kind = row.kind or kind
        choices = row.choices or choices
        factory = cast("Callable[[], Any]", item.default_factory)
        specs[item.name] = replace(
            row,
            name=item.name,
            kind=kind,
            choices=choices,
            default=factory() if item.default is MISSING else item.default,
            parse=_parser(kind, choices, row),
            env=f"RERANK_{item.name.upper()}" if row.env == "" else row.env,
        )
    return specs


SPECS: dict[str, Spec] = _complete(Settings)
# Override names that are switches of a setting of another name: no_cache, refresh.
SWITCHES: dict[str, tuple[Spec, Switch]] = {
    switch.name: (spec, switch)
    for spec in SPECS.values()
    for switch in spec.switches
    if switch.name != spec.name
}
SECRET_KEYS = frozenset(name for name, spec in SPECS.items() if spec.secret)


def convert(spec: Spec, value: Any, who: str) -> Any:
    """``value`` parsed as setting ``spec``; :class:`UsageError` naming ``who`` otherwise."""
    try:
        return spec.parse(value)
    except Invalid as error:
        raise UsageError(values.problem(who, str(error), value, secret=spec.secret)) from None


def unknown(name: str, where: str = "", *, switches: bool = False) -> UsageError:
    """``unknown setting 'no_cach' (did you mean 'no_cache'?)``; ``switches``: the names of
    switches are known too (overrides, not the config file)."""
    import difflib

    close = difflib.get_close_matches(name, [*SPECS, *(SWITCHES if switches else ())], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(SPECS))})"
    return UsageError(f"{where}unknown setting {name!r}{hint}")


def from_config(table: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """The settings of a config file's table (its sub-tables, ``[profiles.X]``, are not)."""
    found = {}
    for key, value in table.items():
        if isinstance(value, dict):
            continue
        spec = SPECS.get(key)
        if spec is None:
            raise unknown(key, f"{origin}: ")
        found[key] = convert(spec, value, f"{origin}: {key}")
    return found


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings given by ``RERANK_*`` variables (an empty variable is not given)."""
    return {
        spec.name: convert(spec, env[spec.env], f"${spec.env}")
        for spec in SPECS.values()
        if spec.env and env.get(spec.env)
    }


def from_overrides(
    overrides: Mapping[str, Any], label: Callable[[str], str] = str
) -> dict[str, Any]:
    """Settings from ``overrides`` keyed by setting name (``batch_size``, ``cache``) or switch
    (``no_cache=True``); None or a false switch is "not given". ``label`` names a key in
    messages (``--batch-size`` on the command line)."""
    found: dict[str, Any] = {}
    given_by: dict[str, str] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        name = key.replace("-", "_")
        if name in SPECS:
            spec = SPECS[name]
            typed = convert(spec, value, label(key))
        elif name in SWITCHES:
            spec, switch = SWITCHES[name]
            try:
                on = values.boolean(value)
            except Invalid as error:
                raise UsageError(values.problem(label(key), str(error), value)) from None
            if not on:
                continue
            typed = switch.value
        else:
            raise unknown(key, switches=True)
        if spec.name in found and found[spec.name] != typed:
            first, second = sorted((given_by[spec.name], key))
            raise UsageError(f"{label(first)} and {label(second)} contradict each other")
        found[spec.name] = typed
        given_by[spec.name] = key
    return found
