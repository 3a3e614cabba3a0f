"""The listings: ``rerank models`` (``GET /models``, through a session), ``rerank account``
(gigarouter's balance; the URL carries the key, so it is never shown), ``rerank profiles`` and
``rerank tasks``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rerank_cli.errors import ExitCode, NothingToShow
from rerank_cli.jobs.execution import guard_output, output_format, retry_notices
from rerank_cli.providers.profile import (
    BUILTIN,
    DEFAULT_PROFILE,
    find_key,
    known_profiles,
    resolve_profile,
)
from rerank_cli.session import Reranker, models_url
from rerank_cli.settings.schema import Settings
from rerank_cli.terminal import Environment
from rerank_cli.writers.catalog import write_account, write_models
from rerank_cli.writers.common import WriteOptions


def run_models(
    env: Environment, settings: Settings, output: str | None, verbose: bool = False
) -> ExitCode:
    notify = retry_notices(env, verbose)
    with Reranker.from_settings(settings, env, require_key=False, notify=notify) as session:
        models = session.models()
    if not models:
        raise NothingToShow(f"{models_url(settings)} lists no models")
    fmt = output_format(env, output)
    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(lambda: write_models(models, fmt, env.stdout, options))
    return ExitCode.OK


def run_account(
    env: Environment, settings: Settings, output: str | None, verbose: bool = False
) -> ExitCode:
    notify = retry_notices(env, verbose)
    with Reranker.from_settings(settings, env, require_key=False, notify=notify) as session:
        payload = session.account()
    fmt = output_format(env, output)
    guard_output(lambda: write_account(payload, fmt, env.stdout))
    return ExitCode.OK


@dataclass(frozen=True)
class ProfileRow:
    name: str
    url: str
    key_env: tuple[str, ...]
    key_set: str | None  # the variable a key would be read from now; never the key
    origin: str  # "built-in", "built-in, changed in config", "config (from vllm)"
    default: bool


def list_profiles(env: Mapping[str, str], config_profiles: Mapping[str, Any]) -> list[ProfileRow]:
    """One row per profile, built-in ones first, for ``rerank profiles``."""
    rows = []
    for name in known_profiles(config_profiles):
        profile = resolve_profile(name, config_profiles)
        if name not in BUILTIN:
            origin = f"config (from {config_profiles[name]['base']})"
        elif name in config_profiles:
            origin = "built-in, changed in config"
        else:
            origin = "built-in"
        found = find_key(profile, env)
        rows.append(
            ProfileRow(
                name=name,
                url=profile.url,
                key_env=profile.key_env,
                key_set=found[0] if found else None,
                origin=origin,
                default=name == DEFAULT_PROFILE,
            )
        )
    return rows


def run_profiles(env: Environment, output: str | None) -> ExitCode:
    from rerank_cli.settings import config_file as config

    table = config.load(config.config_path(env.env))
    rows = [
        (
            row.name,
            row.url,
            " ".join(f"{v} (set)" if v == row.key_set else v for v in row.key_env) or "—",
            row.origin + (", default" if row.default else ""),
        )
        for row in list_profiles(env.env, table.get("profiles", {}))
    ]
    _write_rows(env, ("profile", "url", "key variables", "from"), rows, output)
    return ExitCode.OK


def profile_details(
    env: Mapping[str, str], config_profiles: Mapping[str, Any], name: str
) -> list[tuple[str, str]]:
    """One profile, field by field, its notes among them (``rerank profiles NAME``)."""
    row = next((r for r in list_profiles(env, config_profiles) if r.name == name), None)
    profile = resolve_profile(name, config_profiles)  # an unknown name: the usual error
    assert row is not None
    keys = " ".join(f"{v} (set)" if v == row.key_set else v for v in row.key_env) or "—"

    def limit(value: int | None) -> str:
        return "not documented" if value is None else f"{value:,}"

    instruction = profile.instruction_mode + (
        f" ({profile.instruction_field!r})" if profile.instruction_mode == "field" else ""
    )
    extra = ", ".join(f"{k} = {orjson_text(v)}" for k, v in profile.extra_fields.items())
    return [
        ("url", profile.url),
        ("key variables", keys + ("" if profile.key_required else "; no key needed")),
        ("model", profile.model or "— (the server's own)"),
        ("instruction mode", instruction),
        ("fields sent", extra or "—"),
        ("documents per request", limit(profile.max_documents)),
        ("tokens per document", limit(profile.max_tokens_per_doc)),
        ("context tokens", limit(profile.context_tokens)),
        ("tokens per request", limit(profile.max_tokens_per_request)),
        ("tokenizer", profile.tokenizer or "estimate"),
        ("from", row.origin + (", default" if row.default else "")),
        ("docs", profile.docs_url or "—"),
        ("notes", profile.notes or "—"),
    ]


def orjson_text(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def run_profile(env: Environment, name: str, output: str | None) -> ExitCode:
    from rerank_cli.settings import config_file as config

    table = config.load(config.config_path(env.env))
    rows = profile_details(env.env, table.get("profiles", {}), name)
    _write_rows(env, ("field", "value"), rows, output)
    return ExitCode.OK


def run_tasks(env: Environment, output: str | None) -> ExitCode:
    from rerank_cli.providers.instructions import task_rows

    _write_rows(env, ("task", "use for", "instruction"), task_rows(), output)
    return ExitCode.OK


def _write_rows(
    env: Environment,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[str]],
    output: str | None,
) -> None:
    from rerank_cli.writers.listing import write_rows

    fmt = output_format(env, output)
    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(lambda: write_rows(columns, rows, fmt, env.stdout, options))
