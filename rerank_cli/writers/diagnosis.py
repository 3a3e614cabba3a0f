"""Output of ``rerank doctor``: one row per check (pass, warn, fail or skip, and why) as a table,
or one JSON object whose ``checks`` hold one object per check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from rerank_cli.core.canaries import Check, overall
from rerank_cli.writers.common import WriteOptions, render

STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def diagnosis_record(about: Mapping[str, Any], checks: Sequence[Check]) -> dict[str, Any]:
    record = dict(about)
    record["status"] = overall(checks)
    record["checks"] = [
        {
            "check": check.name,
            "status": check.status,
            "reason": check.reason,
            **({"details": dict(check.details)} if check.details else {}),
        }
        for check in checks
    ]
    return record


def write_diagnosis(
    about: Mapping[str, Any],
    checks: Sequence[Check],
    fmt: str,
    out: IO[bytes],
    options: WriteOptions,
) -> None:
    if fmt == "json":
        out.write(orjson.dumps(diagnosis_record(about, checks)) + b"\n")
        return
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for check in checks:
        table.add_row(
            check.label, Text(check.status, style=STYLES[check.status]), Text(check.reason)
        )
    heading = Text(
        f"{about['model']} at {about['url']} (profile {about['profile']}, instruction mode "
        f"{about['instruction_mode']})"
    )
    render(Group(heading, Text(""), table), out, options)
