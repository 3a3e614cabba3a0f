"""Options shared by several commands, declared once as annotated types."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Optional

import typer

INPUT = "Input"
API = "API"
OUTPUT = "Output"
COST = "Cost and cache"
MODEL = "Model and provider"


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


class EngineName(str, Enum):
    api = "api"
    lexical = "lexical"


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def _api(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=API, show_default=False, **kwargs)


def _out(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=OUTPUT, **kwargs)


# `Optional[...]`, not `X | None`: Typer reads these annotations at run time on Python 3.10.
EngineOpt = Annotated[
    Optional[EngineName],  # noqa: UP045
    _api("--engine", help="api: the rerank API [default]; lexical: offline BM25, no key needed."),
]
BaseUrlOpt = Annotated[
    Optional[str],  # noqa: UP045
    _api(
        "--base-url", help="API base URL [env RERANK_BASE_URL; default https://gigarouter.ai/v1]."
    ),
]
ModelOpt = Annotated[
    Optional[str],  # noqa: UP045
    _api("--model", "-m", help="Model [env RERANK_MODEL; default Qwen/Qwen3-Reranker-0.6B]."),
]
ApiKeyOpt = Annotated[
    Optional[str],  # noqa: UP045
    _api("--api-key", help="API key (prefer env GR_KEY or RERANK_API_KEY: options show in ps)."),
]
BatchSizeOpt = Annotated[
    Optional[int],  # noqa: UP045
    _api("--batch-size", help="Documents per request [default 64].", min=1),
]
MaxRequestBytesOpt = Annotated[
    Optional[int],  # noqa: UP045
    _api("--max-request-bytes", help="Request body budget in bytes [default 4000000].", min=1),
]
ConcurrencyOpt = Annotated[
    Optional[int],  # noqa: UP045
    _api("--concurrency", "-j", help="Requests in flight [default 4].", min=1),
]
MaxRetriesOpt = Annotated[
    Optional[int],  # noqa: UP045
    _api(
        "--max-retries",
        help="Retries per request on network errors, 408/409/425/429/5xx [default 6].",
        min=0,
    ),
]
TimeoutOpt = Annotated[
    Optional[float],  # noqa: UP045
    _api("--timeout", help="Seconds per request [default 60].", min=0.001),
]
WaitColdOpt = Annotated[
    Optional[int],  # noqa: UP045
    _api(
        "--wait-cold",
        help="Ask the server to hold a request up to N s while a cold model warms "
        "(Prefer: wait=N; 0: off) [default 30].",
        min=0,
        metavar="N",
    ),
]
AllowInsecureOpt = Annotated[
    bool,
    _api("--allow-insecure", help="Allow sending the key over plain http:// to another host."),
]
OutputOpt = Annotated[
    Optional[OutputFormat],  # noqa: UP045
    _out(
        "--output",
        "-o",
        help="Output format [default: table on a terminal, else jsonl].",
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
        help="Show results scoring at least X only.",
        metavar="X",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    _out("--quiet", "-q", help="Print no results; the exit code tells (0 results, 1 none)."),
]
VerboseOpt = Annotated[bool, _out("--verbose", "-v", help="A summary on stderr at the end.")]
ColorOpt = Annotated[Color, _out("--color", help="Colour (NO_COLOR is honoured).")]


class Task(str, Enum):
    web = "web"
    code = "code"
    qa = "qa"
    docs = "docs"
    logs = "logs"
    dedup = "dedup"


class InstructionMode(str, Enum):
    field = "field"
    query = "query"
    template = "template"
    none = "none"


class LongMode(str, Enum):
    chunk = "chunk"
    truncate = "truncate"
    error = "error"


def _model(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=MODEL, show_default=False, **kwargs)


ProfileOpt = Annotated[
    Optional[str],  # noqa: UP045
    _model(
        "--profile",
        "-P",
        help="Provider profile: gigarouter [default], cohere, jina, voyage, vllm, tei, infinity, "
        "siliconflow, dashscope, together, novita, or one from the config (rerank profiles).",
        metavar="NAME",
    ),
]
InstructionOpt = Annotated[
    Optional[str],  # noqa: UP045
    _model(
        "--instruction",
        "-I",
        help="Task instruction for instruction-aware models (Qwen3).",
        metavar="TEXT",
    ),
]
TaskOpt = Annotated[
    Optional[Task],  # noqa: UP045
    _model("--task", help="A preset instruction (rerank tasks lists them)."),
]
InstructionModeOpt = Annotated[
    Optional[InstructionMode],  # noqa: UP045
    _model(
        "--instruction-mode",
        help="How the instruction reaches the model: a request field, inside the query, the "
        "full Qwen3 prompt built here (template), or not at all [default: the profile's].",
    ),
]
MaxTokensOpt = Annotated[
    Optional[int],  # noqa: UP045
    _model(
        "--max-tokens",
        help="Tokens per document [default: the model's context minus the query and prompt].",
        min=1,
        metavar="N",
    ),
]
LongOpt = Annotated[
    Optional[LongMode],  # noqa: UP045
    _model(
        "--long",
        help="A document over --max-tokens: score every window and keep the best (chunk), "
        "keep its first N tokens (truncate), or stop (error) [default chunk].",
    ),
]
ChunkOverlapOpt = Annotated[
    Optional[int],  # noqa: UP045
    _model(
        "--chunk-overlap",
        help="Tokens shared by consecutive windows [default 64, or a quarter of --max-tokens "
        "if smaller].",
        min=0,
        metavar="N",
    ),
]


class Tier(str, Enum):
    realtime = "realtime"
    batch = "batch"


def _cost(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=COST, **kwargs)


TierOpt = Annotated[
    Optional[Tier],  # noqa: UP045
    _cost(
        "--tier",
        help="gigarouter: batch sends X-Tier: batch — cheaper, slower when busy "
        "[default realtime].",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool,
    _cost(
        "--dry-run",
        help="Read, dedup and check the cache, then report what would be sent and its price; "
        "send nothing.",
    ),
]
MaxDocsOpt = Annotated[
    Optional[int],  # noqa: UP045
    _cost(
        "--max-docs",
        help="Refuse (exit 2, nothing sent) a run that would send more than N documents.",
        min=0,
        metavar="N",
        show_default=False,
    ),
]
MaxCostOpt = Annotated[
    Optional[float],  # noqa: UP045
    _cost(
        "--max-cost",
        help="Refuse (exit 2, nothing sent) a run estimated to cost more than USD.",
        min=0.0,
        metavar="USD",
        show_default=False,
    ),
]
NoCacheOpt = Annotated[bool, _cost("--no-cache", help="Neither read nor write the score cache.")]
RefreshOpt = Annotated[
    bool, _cost("--refresh", help="Score again and overwrite the cache (do not read it).")
]
CacheTtlOpt = Annotated[
    Optional[float],  # noqa: UP045
    _cost(
        "--cache-ttl",
        help="Cached scores older than DAYS are misses [default: no expiry].",
        metavar="DAYS",
        show_default=False,
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


# The parameters of a ranking command that become settings (the rest of JobOptions below).
SETTING_OPTIONS = (
    "engine", "base_url", "model", "api_key", "batch_size", "max_request_bytes", "concurrency",
    "max_retries", "timeout", "wait_cold", "allow_insecure", "tier", "max_docs", "max_cost",
    "no_cache", "refresh", "cache_ttl", "profile", "instruction", "task", "instruction_mode",
    "max_tokens", "long", "chunk_overlap",
)  # fmt: skip


def job_options(ctx: typer.Context, params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~rerank_cli.execution.JobOptions` fields from a ranking command's
    parameters (its ``locals()``): the shared options are declared once, here, and read once."""
    from rerank_cli.core.pipeline import Filters
    from rerank_cli.jobs.rank_job import settings_for

    env = ctx.obj
    env.color_mode = params["color"].value
    chosen = {name: params[name] for name in SETTING_OPTIONS}
    output = params["output"]
    return {
        "settings": settings_for(env, **settings_overrides(**chosen)),
        "output": output.value if output else None,
        "filters": Filters(top_k=params["top_k"], min_score=params["min_score"]),
        "quiet": params["quiet"],
        "verbose": params["verbose"],
        "dry_run": params["dry_run"],
        "stats_path": params["stats"],
    }


def settings_overrides(
    *, no_cache: bool = False, refresh: bool = False, allow_insecure: bool = False, **options: Any
) -> dict[str, Any]:
    """Command-line options as setting overrides; None means "not given", so the environment,
    config file or default decides."""
    if no_cache and refresh:
        from rerank_cli.errors import UsageError

        raise UsageError("--no-cache and --refresh contradict each other")
    overrides = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    overrides["allow_insecure"] = allow_insecure or None
    overrides["cache"] = "off" if no_cache else "refresh" if refresh else None
    return overrides
