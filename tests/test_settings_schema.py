"""One table of settings: ``rerank_cli.settings.load`` (the Python entry the CLI resolves through
too), its overrides, and messages in the user's terms from every source — options, environment,
config file, ``rerank config set``, ``[profiles.NAME]`` fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rerank_cli.errors import UsageError
from rerank_cli.settings import load
from tests.conftest import RunCli

LEX = ("--engine", "lexical")
PYTHON_WORDS = ("invalid literal", "could not convert", "Traceback", "ValueError")


def refused(overrides: dict[str, Any], config: dict[str, Any] | None = None, **env: str) -> str:
    with pytest.raises(UsageError) as caught:
        load(env, overrides, config=config or {})
    return str(caught.value)


# --- load(): overrides ------------------------------------------------------------------------


def test_overrides_by_config_name_or_option_name() -> None:
    settings = load(
        {},
        {
            "batch_size": 8,
            "concurrency": "3",
            "no_cache": True,
            "allow_insecure": True,
            "profile": "cohere",
            "timeout": 2,
            "max_cost": "0.5",
            "tier": "batch",
            "base_url": None,  # not given
        },
        config={},
    )
    assert (settings.batch_size, settings.concurrency) == (8, 3)
    assert (settings.cache, settings.allow_insecure, settings.tier) == ("off", True, "batch")
    assert settings.profile.name == "cohere"
    assert settings.base_url == "https://api.cohere.com/v2"  # the profile's: None is not given
    assert (settings.timeout, settings.max_cost) == (2.0, 0.5)
    assert load({}, {"refresh": True}, config={}).cache == "refresh"
    assert load({}, {"cache": "off"}, config={}).cache == "off"
    assert load({}, {"no_cache": False}, config={"cache": "refresh"}).cache == "refresh"


def test_option_beats_environment_beats_config_beats_default() -> None:
    config = {"batch_size": 8, "timeout": 5, "concurrency": 2}
    env = {"RERANK_BATCH_SIZE": "16", "RERANK_TIMEOUT": "7"}
    settings = load(env, {"timeout": 9}, config=config)
    assert (settings.timeout, settings.batch_size, settings.concurrency) == (9.0, 16, 2)
    assert settings.max_retries == 6  # the default


def test_an_unknown_name_suggests_the_closest() -> None:
    assert refused({"no_cach": True}) == "unknown setting 'no_cach' (did you mean 'no_cache'?)"
    assert "did you mean 'batch_size'" in refused({"batchsize": 3})


def test_switches_that_contradict_each_other() -> None:
    assert "contradict" in refused({"no_cache": True, "refresh": True})
    assert "contradict" in refused({"cache": "on", "no_cache": True})
    assert load({}, {"cache": "off", "no_cache": True}, config={}).cache == "off"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": "abc"}, "batch_size must be a whole number ≥ 1, got 'abc'"),
        ({"batch_size": 0}, "batch_size must be a whole number ≥ 1, got 0"),
        ({"batch_size": True}, "batch_size must be a whole number ≥ 1, got True"),
        ({"batch_size": 2.5}, "batch_size must be a whole number ≥ 1, got 2.5"),
        ({"max_cost": "abc"}, "max_cost must be a finite number ≥ 0, got 'abc'"),
        ({"tier": "fast"}, "tier must be one of realtime, batch, got 'fast'"),
        ({"task": "poetry"}, "task must be one of web, code, qa, docs, logs, dedup, got 'poetry'"),
        ({"base_url": "ftp://x"}, "base_url must be an http:// or https:// URL, got 'ftp://x'"),
        ({"base_url": "http://x:0/v1"}, "must be an http:// or https:// URL"),
        ({"allow_insecure": "perhaps"}, "allow_insecure must be true or false"),
        ({"no_cache": "perhaps"}, "no_cache must be true or false"),
        ({"model": ""}, "model must be a non-empty string, got ''"),
    ],
)
def test_a_bad_python_value_is_named_and_shown(overrides: dict[str, Any], message: str) -> None:
    assert message in refused(overrides)


@pytest.mark.parametrize("setting", ["timeout", "max_cost", "cache_ttl"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_non_finite_numbers_are_refused_everywhere(setting: str, value: Any) -> None:
    assert f"{setting} must be a finite number" in refused({setting: value})
    assert f"{setting} must be a finite number" in refused({}, config={setting: value})
    if isinstance(value, str):
        variable = f"RERANK_{setting.upper()}"
        assert f"${variable} must be a finite number" in refused({}, **{variable: value})


def test_a_secret_is_never_shown_in_a_message() -> None:
    message = refused({"api_key": ["gr-secret-value"]})
    assert "gr-secret" not in message
    assert message.startswith("api_key must be")


# --- one boolean parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("1", True),
        ("no", False),
        ("off", False),
        ("false", False),
        ("0", False),
    ],
)
def test_every_source_reads_booleans_alike(text: str, expected: bool) -> None:
    assert load({}, {"allow_insecure": text}, config={}).allow_insecure is expected
    assert load({}, {}, config={"allow_insecure": text}).allow_insecure is expected
    profiles = {"profiles": {"vllm": {"send_model": text, "key_required": text}}}
    profile = load({}, {"profile": "vllm"}, config=profiles).profile
    assert (profile.send_model, profile.key_required) == (expected, expected)


def test_toml_booleans_too() -> None:
    assert load({}, {}, config={"allow_insecure": True}).allow_insecure is True
    config = {"profile": "vllm", "profiles": {"vllm": {"send_model": False}}}
    assert load({}, {}, config=config).profile.send_model is False


def test_a_profile_base_url_is_checked_like_the_setting() -> None:
    config = {"profiles": {"vllm": {"base_url": "gpu-box:8000"}}}
    message = refused({"profile": "vllm"}, config)
    assert message == (
        "[profiles.vllm]: base_url must be an http:// or https:// URL, got 'gpu-box:8000'"
    )


# --- task, key and profile rules through load() ----------------------------------------------


def test_task_is_a_setting_and_an_instruction_beats_it_at_each_level() -> None:
    coded = load({}, {"task": "code"}, config={})
    assert coded.task == "code" and coded.instruction and "code" in coded.instruction
    explicit = load({}, {"task": "code", "instruction": "Mine"}, config={})
    assert (explicit.instruction, explicit.task) == ("Mine", None)
    # A task given as an option beats an instruction from the environment.
    env = {"RERANK_INSTRUCTION": "From env"}
    assert load(env, {"task": "qa"}, config={}).task == "qa"
    assert load(env, {}, config={"task": "qa"}).instruction == "From env"


def test_a_gigarouter_config_key_never_goes_to_another_profile() -> None:
    config = {"api_key": "gr-config-key-0001"}
    assert load({}, {}, config=config).api_key == "gr-config-key-0001"
    assert load({}, {"profile": "cohere"}, config=config).api_key is None
    cohere = load({"CO_API_KEY": "co-key"}, {"profile": "cohere"}, config=config)
    assert (cohere.api_key, cohere.api_key_origin) == ("co-key", "$CO_API_KEY")


def test_load_reads_the_config_file_unless_given_one(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('batch_size = 12\ntier = "batch"\n')
    env = {"RERANK_CONFIG_DIR": str(tmp_path)}
    assert load(env, {}).batch_size == 12
    assert load(env, {}, config={}).batch_size == 64
    (tmp_path / "config.toml").write_text("batch_size = 0\n")
    with pytest.raises(UsageError, match=r"config\.toml: batch_size must be a whole number ≥ 1"):
        load(env, {})


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--base-url", "ftp://x"), {}, "--base-url must be an http:// or https:// URL, got"),
        (("--max-cost", "nan"), {}, "--max-cost must be a finite number ≥ 0, got 'nan'"),
        (("--cache-ttl", "inf"), {}, "--cache-ttl must be a finite number ≥ 0, got 'inf'"),
        (("--model", ""), {}, "--model must be a non-empty string, got ''"),
        (("--no-cache", "--refresh"), {}, "--no-cache and --refresh contradict each other"),
        ((), {"RERANK_BATCH_SIZE": "abc"}, "$RERANK_BATCH_SIZE must be a whole number ≥ 1"),
        ((), {"RERANK_TIER": "fast"}, "$RERANK_TIER must be one of realtime, batch, got 'fast'"),
        ((), {"RERANK_MAX_COST": "abc"}, "$RERANK_MAX_COST must be a finite number ≥ 0, got 'abc'"),
        ((), {"RERANK_TIMEOUT": "nan"}, "$RERANK_TIMEOUT must be a finite number"),
    ],
)
def test_cli_messages_name_the_option_or_variable(
    cli: RunCli, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = cli("q", "a", *LEX, *args, env=env)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not any(words in result.stderr for words in PYTHON_WORDS)


def test_cli_config_file_messages_name_the_file_and_key(
    cli: RunCli, isolated_env: dict[str, str]
) -> None:
    config_dir = Path(isolated_env["RERANK_CONFIG_DIR"])
    config_dir.mkdir()
    (config_dir / "config.toml").write_text('max_cost = "abc"\n')
    result = cli("q", "a", *LEX)
    assert result.exit_code == 2
    assert "config.toml: max_cost must be a finite number ≥ 0, got 'abc'" in result.stderr


def test_config_set_checks_with_the_schema(cli: RunCli) -> None:
    bad = cli("config", "set", "batch_size", "abc")
    assert bad.exit_code == 2
    assert "batch_size must be a whole number ≥ 1, got 'abc'" in bad.stderr
    tier = cli("config", "set", "tier", "fast")
    assert "tier must be one of realtime, batch, got 'fast'" in tier.stderr
    typo = cli("config", "set", "batch-size", "3")
    assert "unknown setting 'batch-size' (did you mean 'batch_size'?)" in typo.stderr
    # Only config keys: a switch is not one.
    assert cli("config", "set", "no_cache", "yes").exit_code == 2
    assert cli("config", "set", "allow_insecure", "yes").exit_code == 0
    assert cli("config", "set", "max_cost", "0.25").exit_code == 0
    assert cli("config", "set", "task", "code").exit_code == 0
    shown = cli("config", "show").text
    assert "allow_insecure = true" in shown
    assert "max_cost = 0.25" in shown
    assert 'task = "code"' in shown


def test_config_set_refuses_an_unknown_task(cli: RunCli) -> None:
    result = cli("config", "set", "task", "nonsense")
    assert result.exit_code == 2 and "task must be one of web, code" in result.stderr


def test_every_ranking_command_takes_every_setting_option(cli: RunCli) -> None:
    flags = [
        "--engine", "--base-url", "--model", "--api-key", "--batch-size", "--max-request-bytes",
        "--concurrency", "--max-retries", "--timeout", "--wait-cold", "--allow-insecure",
        "--max-docs", "--max-cost", "--tier", "--no-cache", "--refresh", "--cache-ttl",
        "--profile", "--instruction", "--task", "--instruction-mode", "--max-tokens", "--long",
        "--chunk-overlap", "-j", "-m", "-P", "-I",
    ]  # fmt: skip
    for command in ("rank", "files"):
        shown = cli(command, "--help", env={"COLUMNS": "200"}).text
        for flag in flags:
            assert f" {flag} " in shown, (command, flag)
    models = cli("models", "--help", env={"COLUMNS": "200"}).text
    assert " --base-url " in models and " --api-key " in models
    assert " --batch-size " not in models
    assert cli("models", "--batch-size", "3").exit_code == 2


def test_short_flags_and_choices_parse(cli: RunCli) -> None:
    result = cli("paris", "bananas", "paris", *LEX, "-j", "2", "--long", "truncate", "-o", "jsonl")
    assert result.exit_code == 0
    assert cli("q", "a", *LEX, "--long", "sideways").exit_code == 2


def test_help_keeps_the_panels_and_their_order(cli: RunCli) -> None:
    shown = cli("rank", "--help", env={"COLUMNS": "200"}).text
    panels = ["─ Input ", "─ API ", "─ Output ", "─ Cost and cache ", "─ Model and provider "]
    assert sorted(panels, key=shown.index) == panels
    cost = shown[shown.index("─ Cost and cache ") : shown.index("─ Model and provider ")]
    order = ["--dry-run", "--max-docs", "--max-cost", "--tier", "--no-cache", "--refresh"]
    order += ["--cache-ttl", "--stats"]
    assert sorted(order, key=cost.index) == order
