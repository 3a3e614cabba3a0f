"""The config file: ``config.toml`` in the platform config directory (``RERANK_CONFIG_DIR``
overrides). Written atomically with mode 0600, since it may hold an API key."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rerank_cli.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FILE_NAME = "config.toml"


def user_dir(env: Mapping[str, str], variable: str, kind: str) -> Path:
    """The platform's ``kind`` ("config", "cache") directory for rerank; ``$variable``
    overrides it."""
    override = env.get(variable)
    if override:
        return Path(override)
    import platformdirs

    finder = getattr(platformdirs, f"user_{kind}_dir")
    return Path(finder("rerank", appauthor=False))


def config_dir(env: Mapping[str, str]) -> Path:
    return user_dir(env, "RERANK_CONFIG_DIR", "config")


def config_path(env: Mapping[str, str]) -> Path:
    return config_dir(env) / FILE_NAME


def load(path: Path) -> dict[str, Any]:
    """The file's table, or ``{}`` when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise UsageError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        table: dict[str, Any] = tomllib.loads(data.decode("utf-8", errors="replace"))
        return table
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path}: invalid TOML ({error})") from None


def save(path: Path, table: Mapping[str, Any]) -> None:
    import tempfile

    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(dict(table), handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
