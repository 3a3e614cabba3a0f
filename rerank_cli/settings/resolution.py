"""Resolved settings: for each one the first found wins — option → environment → config file →
profile → default. What a setting is (type, variable, bounds) is declared once, in
:mod:`rerank_cli.settings.schema`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rerank_cli.errors import UsageError
from rerank_cli.providers.instructions import TASKS
from rerank_cli.providers.profile import DEFAULT_PROFILE, Profile, find_key, resolve_profile
from rerank_cli.settings import schema, values
from rerank_cli.settings.schema import DEFAULT_BASE_URL, DEFAULT_MODEL, SECRET_KEYS, Settings

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "SECRET_KEYS",
    "Settings",
    "check_transport_security",
    "is_loopback",
    "resolve",
]


def resolve(
    options: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
    config_origin: str = "config file",
) -> Settings:
    """Build :class:`Settings`. ``options`` holds what was given explicitly (the command line,
    the Python API): keyed by setting name or switch (``no_cache=True``), None meaning "not
    given"; see :func:`rerank_cli.settings.load`."""
    levels: list[dict[str, Any]] = [  # lowest first: config file, environment, options
        schema.from_config(config, config_origin),
        schema.from_env(env),
        schema.from_overrides(options),
    ]
    chosen: dict[str, Any] = {}
    for level in levels:
        chosen.update(level)

    profiles = config.get("profiles", {})
    profile = resolve_profile(chosen.pop("profile", DEFAULT_PROFILE), profiles)
    chosen["profile"] = profile
    # A base URL or model belongs to the profile in effect at its level: a config `base_url`
    # for gigarouter must not carry the key of `-P cohere` to gigarouter's host. Per-profile
    # values belong in [profiles.NAME].
    in_effect = DEFAULT_PROFILE
    chosen["base_url"], chosen["model"] = profile.base_url, profile.model
    for level in levels:
        in_effect = level.get("profile", in_effect)
        if in_effect == profile.name:
            chosen.update({k: level[k] for k in ("base_url", "model") if k in level})
    chosen.setdefault("instruction_mode", profile.instruction_mode)
    chosen["instruction"], chosen["task"] = _instruction(levels)
    chosen.pop("api_key", None)
    chosen["api_key"], chosen["api_key_origin"] = _api_key(levels, profile, env, config_origin)
    return Settings(**chosen)


def _instruction(levels: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The instruction and the task preset it came from, if it did. At each level (options,
    then environment, then config) an explicit instruction beats a task preset; a higher level
    beats a lower one."""
    for level in reversed(levels):
        if level.get("instruction"):
            return str(level["instruction"]), None
        if level.get("task"):
            return TASKS[level["task"]], str(level["task"])
    return None, None


def _api_key(
    levels: list[dict[str, Any]], profile: Profile, env: Mapping[str, str], config_origin: str
) -> tuple[str | None, str | None]:
    """The key and where it came from: --api-key, else the profile's variables, else the config
    file's ``api_key`` — which belongs to the default profile only, so that a gigarouter key
    never travels to another provider."""
    if levels[-1].get("api_key"):
        return levels[-1]["api_key"], "--api-key"
    found = find_key(profile, env)
    if found is not None:
        return found[1], f"${found[0]}"
    if levels[0].get("api_key") and profile.name == DEFAULT_PROFILE:
        return levels[0]["api_key"], config_origin
    return None, None


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport_security(settings: Settings) -> None:
    """Refuse a malformed base URL, and a key in clear text anywhere but this machine."""
    expected = values.url_problem(settings.base_url)
    if expected:
        raise UsageError(values.problem("--base-url", expected, settings.display_url))
    parts = urlsplit(settings.base_url)
    if (
        parts.scheme == "http"
        and settings.api_key
        and not settings.allow_insecure
        and not is_loopback(settings.base_url)
    ):
        raise UsageError(
            f"refusing to send the API key in clear text to {settings.host} (http://); "
            "use https://, or --allow-insecure if you mean it"
        )
