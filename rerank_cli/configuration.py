"""What ``rerank config`` does: show, set and unset keys, secrets never printed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rerank_cli import config
from rerank_cli.errors import UsageError
from rerank_cli.redact import mask
from rerank_cli.settings import SECRET_KEYS, convert


def _shown(key: str, value: Any) -> str:
    if key in SECRET_KEYS and isinstance(value, str):
        return f'"{mask(value)}"'
    import tomli_w

    return tomli_w.dumps({key: value}).split(" = ", 1)[1].rstrip("\n")


def show(env: Mapping[str, str]) -> str:
    path = config.config_path(env)
    table = config.load(path)
    lines = [f"# {path}" + ("" if path.exists() else " (does not exist yet)")]
    for key, value in table.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{k} = {_shown(k, v)}" for k, v in value.items())
        else:
            lines.append(f"{key} = {_shown(key, value)}")
    return "\n".join(lines) + "\n"


def set_value(env: Mapping[str, str], key: str, value: str) -> str:
    path = config.config_path(env)
    typed = convert(key, value, "rerank config set")
    table = config.load(path)
    table[key] = typed
    config.save(path, table)
    return f"set {key} in {path}"


def unset_value(env: Mapping[str, str], key: str) -> str:
    path = config.config_path(env)
    table = config.load(path)
    if key not in table:
        raise UsageError(f"{key} is not set in {path}")
    del table[key]
    config.save(path, table)
    return f"removed {key} from {path}"
