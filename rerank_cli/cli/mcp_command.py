"""``rerank mcp`` — a Model Context Protocol server over stdio, for coding agents."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from rerank_cli.cli.options import setting_options
from rerank_cli.settings.schema import COST, SPECS

EXAMPLES = """**Examples**

```
rerank mcp                                  # in the project's directory, as the agent runs it
rerank mcp --max-docs 300 --task code
rerank mcp -P vllm --base-url http://gpu:8000/v1
```

Register it with an agent (Claude Code, Cursor …) as `{"command": "rerank", "args": ["mcp"]}`.
"""

# Every setting but max_docs, whose flag this command gives to its own per-call limit
# (mcp_max_docs); max_docs from the config file or the environment still applies.
_SETTINGS = tuple(name for name in SPECS if name != "max_docs")


@setting_options(*_SETTINGS)
def mcp(
    ctx: typer.Context,
    max_docs: Annotated[
        Optional[int],  # noqa: UP045  (Typer reads it at run time on Python 3.10)
        typer.Option(
            "--max-docs",
            help="Refuse a tool call that would score more than N documents or file chunks "
            "[config mcp_max_docs, env RERANK_MCP_MAX_DOCS; default 1000].",
            min=1,
            metavar="N",
            rich_help_panel=COST,
            show_default=False,
        ),
    ] = None,
    **settings: Any,
) -> None:
    """Serve `rank` and `rank_files` to a coding agent over MCP (stdio).

    One session for the server's life; settings as for `rerank rank`. `rank_files` reads only
    inside the directory the server was started in, and never files that look like secrets.
    Needs the optional extra: pip install 'rerank-cli[mcp]'.
    """
    from rerank_cli.jobs import mcp_job
    from rerank_cli.settings import load

    env = ctx.obj
    resolved = load(env.env, {**settings, "mcp_max_docs": max_docs})
    raise typer.Exit(mcp_job.run(env, resolved))
