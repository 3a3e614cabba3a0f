"""Every setting: its schema (``schema``: one table), its resolution (option → environment →
config file → profile → default), and the config file.

Kept light: importing the package imports nothing else; :func:`load` imports on first use."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: keep importing this package free
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from rerank_cli.settings.schema import Settings

__all__ = ["load"]


def load(
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings in effect: ``overrides`` → ``env`` → the config file → the profile →
    defaults.

    ``overrides`` are keyed by config-file name or long option name (``batch_size``,
    ``profile="cohere"``, ``task="code"``, ``no_cache=True``, ``refresh=True``,
    ``allow_insecure=True``); None means "not given". Values may be Python values or strings
    and are checked like the command line's. ``config`` replaces the file at
    ``config_file.config_path(env)``. An unknown name or a bad value raises
    :class:`~rerank_cli.errors.UsageError`. The session that uses them
    registers the key (and a password in the base URL) for redaction."""
    from rerank_cli.settings import config_file
    from rerank_cli.settings.resolution import resolve

    if config is None:
        path = config_file.config_path(env)
        config, origin = config_file.load(path), str(path)
    else:
        origin = "config"
    return resolve(overrides, env, config, config_origin=origin)
