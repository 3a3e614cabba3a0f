"""Options shared by several commands, declared once as annotated types."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

INPUT = "Input"
API = "API"
OUTPUT = "Output"


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


def api_settings(
    engine: EngineName | None,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    batch_size: int | None,
    max_request_bytes: int | None,
    concurrency: int | None,
    max_retries: int | None,
    timeout: float | None,
    wait_cold: int | None,
    allow_insecure: bool,
) -> dict[str, Any]:
    """The API options as setting overrides (None: not given on the command line)."""
    return {
        "engine": engine.value if engine else None,
        "base_url": base_url,
        "model": model,
        "api_key": api_key,
        "batch_size": batch_size,
        "max_request_bytes": max_request_bytes,
        "concurrency": concurrency,
        "max_retries": max_retries,
        "timeout": timeout,
        "wait_cold": wait_cold,
        "allow_insecure": allow_insecure or None,
    }
