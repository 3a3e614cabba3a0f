"""Every setting: its schema, its resolution (option → environment → config file → profile →
default), and the config file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rerank_cli.settings.resolution import Settings


def load(
    env: Mapping[str, str], overrides: Mapping[str, Any], *, config: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from ``overrides`` (config-file or long option names; None: not given), the
    environment ``env``, the config file (or ``config``), the profile and the defaults."""
    from rerank_cli.settings import config_file
    from rerank_cli.settings.resolution import resolve

    path = config_file.config_path(env)
    table = config_file.load(path) if config is None else dict(config)
    options = dict(overrides)
    no_cache, refresh = options.pop("no_cache", None), options.pop("refresh", None)
    if no_cache or refresh:
        options["cache"] = "off" if no_cache else "refresh"
    return resolve(options, env, table, config_origin=str(path))
