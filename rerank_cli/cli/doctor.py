"""``rerank doctor`` — check the configured provider before trusting it."""

from __future__ import annotations

from typing import Any

import typer

from rerank_cli.cli.options import (
    Color,
    ColorOpt,
    DryRunOpt,
    ReportOpt,
    VerboseOpt,
    setting_options,
)

EXAMPLES = """**Examples**

```
rerank doctor
rerank doctor -P vllm --base-url http://gpu:8000/v1
rerank doctor -P vllm --instruction-mode template
rerank doctor --dry-run
rerank doctor -o json | jq '.checks[] | select(.status != "pass")'
```
"""


@setting_options()
def doctor(
    ctx: typer.Context,
    output: ReportOpt = None,
    color: ColorOpt = Color.auto,
    verbose: VerboseOpt = False,
    dry_run: DryRunOpt = False,
    **settings: Any,
) -> None:
    """Check the provider before trusting it: the key, the model and its price; canary pairs
    (English, Chinese, code) any sound reranker orders right; whether an instruction reaches
    the model; whether a document near the token limit is read whole; the speed of one batch.
    Sends about 100 documents, 64 of them the timed batch (said on stderr first; --dry-run
    sends none); nothing is cached.
    Exit 0 when every check passes (warnings allowed), 1 when one fails."""
    from rerank_cli.jobs.doctor_job import run_doctor
    from rerank_cli.settings import load

    env = ctx.obj
    env.color_mode = color.value
    resolved = load(env.env, settings)
    raise typer.Exit(
        run_doctor(
            env,
            resolved,
            output.value if output else None,
            dry_run=dry_run,
            verbose=verbose,
        )
    )
