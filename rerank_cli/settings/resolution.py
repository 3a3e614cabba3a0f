"""Resolved settings: for each one the first found wins — option → environment → config file →
profile → default. Every config key is declared once here, with its type and its environment
variable."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from rerank_cli.errors import UsageError
from rerank_cli.providers.instructions import MODES, TASKS
from rerank_cli.providers.profile import (
    BUILTIN,
    DEFAULT_PROFILE,
    Profile,
    find_key,
    resolve_profile,
)

DEFAULT_BASE_URL = BUILTIN[DEFAULT_PROFILE].base_url
DEFAULT_MODEL = BUILTIN[DEFAULT_PROFILE].model
LONG_MODES = ("chunk", "truncate", "error")


@dataclass
class Settings:
    engine: str = "api"
    profile: Profile = field(default_factory=lambda: BUILTIN[DEFAULT_PROFILE])
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = None
    api_key_origin: str | None = None  # where the key came from, for messages (never the value)
    batch_size: int = 64
    max_request_bytes: int = 4_000_000
    concurrency: int = 4
    max_retries: int = 6
    timeout: float = 60.0
    wait_cold: int = 30
    allow_insecure: bool = False
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    tier: str = "realtime"  # gigarouter: "batch" sends X-Tier: batch (cheaper, flexible latency)
    max_docs: int | None = None  # refuse a run that would send more documents than this
    max_cost: float | None = None  # … or cost more than this many USD (estimated)
    cache: str = "on"  # on (read+write) · refresh (write only) · off
    cache_ttl: float | None = None  # days; None: entries never expire
    instruction: str | None = None  # the task instruction (-I, or a --task preset)
    instruction_mode: str = "query"  # how it reaches the model: field · query · template · none
    max_tokens: int | None = None  # per document; None: the profile's limit for this query
    long: str = "chunk"  # a document over max_tokens: chunk · truncate · error
    # Tokens shared by consecutive windows of a long document; None: 64, at most a quarter of
    # a window (so that a small --max-tokens alone is no error).
    chunk_overlap: int | None = None

    @property
    def rerank_url(self) -> str:
        return self.base_url.rstrip("/") + self.profile.path

    @property
    def host(self) -> str:
        """``host[:port]`` for messages: never the ``user:password@`` a URL may carry."""
        netloc = urlsplit(self.base_url).netloc
        return netloc.rpartition("@")[2] or self.base_url

    @property
    def display_url(self) -> str:
        """The base URL for messages, without credentials."""
        parts = urlsplit(self.base_url)
        return parts._replace(netloc=self.host).geturl() if parts.netloc else self.base_url


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be more than 0")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _url(value: Any) -> str:
    text = _text(value)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError("must be an http:// or https:// URL")
    return text


def _non_negative_float(value: Any) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be 0 or more")
    return number


def _choice(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value)
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return convert


# config key → (converter, environment variable or None)
CONFIG_KEYS: dict[str, tuple[Callable[[Any], Any], str | None]] = {
    "engine": (_choice("api", "lexical"), "RERANK_ENGINE"),
    "base_url": (_url, "RERANK_BASE_URL"),
    "model": (_text, "RERANK_MODEL"),
    "api_key": (_text, None),  # GR_KEY / RERANK_API_KEY, handled below
    "batch_size": (_positive_int, "RERANK_BATCH_SIZE"),
    "max_request_bytes": (_positive_int, "RERANK_MAX_REQUEST_BYTES"),
    "concurrency": (_positive_int, "RERANK_CONCURRENCY"),
    "max_retries": (_non_negative_int, "RERANK_MAX_RETRIES"),
    "timeout": (_positive_float, "RERANK_TIMEOUT"),
    "wait_cold": (_non_negative_int, "RERANK_WAIT_COLD"),
    "allow_insecure": (_boolean, None),
    "tier": (_choice("realtime", "batch"), "RERANK_TIER"),
    "max_docs": (_non_negative_int, "RERANK_MAX_DOCS"),
    "max_cost": (_non_negative_float, "RERANK_MAX_COST"),
    "cache": (_choice("on", "refresh", "off"), "RERANK_CACHE"),
    "cache_ttl": (_non_negative_float, "RERANK_CACHE_TTL"),
    "profile": (_text, "RERANK_PROFILE"),
    "instruction": (_text, "RERANK_INSTRUCTION"),
    "task": (_choice(*TASKS), "RERANK_TASK"),
    "instruction_mode": (_choice(*MODES), "RERANK_INSTRUCTION_MODE"),
    "max_tokens": (_positive_int, "RERANK_MAX_TOKENS"),
    "long": (_choice(*LONG_MODES), "RERANK_LONG"),
    "chunk_overlap": (_non_negative_int, "RERANK_CHUNK_OVERLAP"),
}
SECRET_KEYS = frozenset({"api_key"})


def convert(key: str, value: Any, origin: str) -> Any:
    try:
        converter, _ = CONFIG_KEYS[key]
    except KeyError:
        known = ", ".join(sorted(CONFIG_KEYS))
        raise UsageError(f"unknown setting {key!r} in {origin} (known: {known})") from None
    try:
        return converter(value)
    except (TypeError, ValueError) as error:
        shown = "…" if key in SECRET_KEYS else repr(value)
        raise UsageError(f"{origin}: {key} = {shown}: {error}") from None


def resolve(
    options: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
    config_origin: str = "config file",
) -> Settings:
    """Build :class:`Settings`; ``options`` holds only what was given on the command line."""
    known = {f.name for f in fields(Settings)} | {"task"}
    given = {key: value for key, value in options.items() if value is not None}
    for key in given:
        if key not in known:
            raise UsageError(f"unknown setting {key!r}")
    levels: list[dict[str, Any]] = []  # lowest first: config file, environment, options
    levels.append(
        {
            key: convert(key, value, config_origin)
            for key, value in config.items()
            if not isinstance(value, dict)  # tables ([profiles.X] …) are the profiles'
        }
    )
    levels.append(
        {
            key: convert(key, env[variable], f"${variable}")
            for key, (_, variable) in CONFIG_KEYS.items()
            if variable and env.get(variable)
        }
    )
    levels.append(
        {
            key: convert(key, value, f"--{key.replace('_', '-')}") if key in CONFIG_KEYS else value
            for key, value in given.items()
        }
    )
    values: dict[str, Any] = {}
    for level in levels:
        values.update(level)

    profiles = config.get("profiles", {})
    profile = resolve_profile(values.pop("profile", DEFAULT_PROFILE), profiles)
    values["profile"] = profile
    # A base URL or model belongs to the profile in effect at its level: a config `base_url`
    # for gigarouter must not carry the key of `-P cohere` to gigarouter's host. Per-profile
    # values belong in [profiles.NAME].
    in_effect = DEFAULT_PROFILE
    values["base_url"], values["model"] = profile.base_url, profile.model
    for level in levels:
        in_effect = level.get("profile", in_effect)
        if in_effect == profile.name:
            values.update({k: level[k] for k in ("base_url", "model") if k in level})
    values.setdefault("instruction_mode", profile.instruction_mode)
    values["instruction"] = _instruction(levels)
    values.pop("task", None)
    values.pop("api_key", None)
    values["api_key"], values["api_key_origin"] = _api_key(levels, profile, env, config_origin)
    return Settings(**values)


def _instruction(levels: list[dict[str, Any]]) -> str | None:
    """At each level (options, then environment, then config) an explicit instruction beats a
    task preset; a higher level beats a lower one."""
    for level in reversed(levels):
        if level.get("instruction"):
            return str(level["instruction"])
        if level.get("task"):
            return TASKS[level["task"]]
    return None


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
    parts = urlsplit(settings.base_url)
    shown = settings.display_url
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        port = parts.port  # raises for a port out of range or not a number
        valid = valid and (port is None or port > 0)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(f"--base-url must be an http:// or https:// URL, got {shown!r}")
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
