"""Settings resolution, transport security, redaction."""

from __future__ import annotations

import pytest

from rerank_cli.errors import UsageError
from rerank_cli.redact import mask, redact, register_secret
from rerank_cli.settings.resolution import Settings, check_transport_security, is_loopback, resolve


def test_option_beats_environment_beats_config_beats_default() -> None:
    config = {"model": "from-config", "batch_size": 8, "timeout": 5}
    env = {"RERANK_MODEL": "from-env", "RERANK_BATCH_SIZE": "16"}
    settings = resolve({"model": "from-option", "timeout": None}, env, config)
    assert settings.model == "from-option"
    assert settings.batch_size == 16
    assert settings.timeout == 5.0
    assert settings.concurrency == Settings().concurrency


# Issue 2's documented defaults, written out here rather than read from the code under test.
DOCUMENTED_DEFAULTS = {
    "engine": "api",
    "base_url": "https://gigarouter.ai/v1",
    "model": "Qwen/Qwen3-Reranker-0.6B",
    "batch_size": 64,
    "max_request_bytes": 4_000_000,
    "concurrency": 4,
    "max_retries": 6,
    "timeout": 60,
    "wait_cold": 30,
    "backoff_base": 0.5,
    "backoff_cap": 30,
    "api_key": None,
    "allow_insecure": False,
}


@pytest.mark.parametrize(
    "settings", [Settings(), resolve({}, {}, {})], ids=["Settings()", "resolved-from-nothing"]
)
def test_documented_defaults(settings: Settings) -> None:
    actual = {name: getattr(settings, name) for name in DOCUMENTED_DEFAULTS}
    assert actual == DOCUMENTED_DEFAULTS
    assert settings.rerank_url == "https://gigarouter.ai/v1/rerank"


def test_key_sources_and_their_order() -> None:
    config = {"api_key": "config-key"}
    assert resolve({}, {}, config).api_key_origin == "config file"
    both = {"GR_KEY": "gr-key", "RERANK_API_KEY": "other"}
    assert resolve({}, both, config).api_key == "gr-key"
    assert resolve({}, {"RERANK_API_KEY": "other"}, config).api_key == "other"
    chosen = resolve({"api_key": "opt"}, both, config)
    assert (chosen.api_key, chosen.api_key_origin) == ("opt", "--api-key")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"nonsense": 1}, "unknown setting 'nonsense'"),
        ({"engine": "quantum"}, "must be one of api, lexical"),
        ({"allow_insecure": "perhaps"}, "true or false"),
    ],
)
def test_bad_values_are_usage_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve({}, {}, config)


def test_a_bad_key_value_is_never_echoed() -> None:
    with pytest.raises(UsageError) as caught:
        resolve({}, {}, {"api_key": ["gr-secret-in-a-list"]})
    assert "gr-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.9.9.9/v1", True),
        ("http://[::1]:80/v1", True),
        ("http://localhost/v1", True),
        ("http://10.0.0.1/v1", False),
        ("http://example.com/v1", False),
        ("http://127.0.0.1.example.com/v1", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_key_over_plain_http_only_to_loopback_or_when_allowed() -> None:
    check_transport_security(Settings(base_url="https://x.example/v1", api_key="k"))
    check_transport_security(Settings(base_url="http://127.0.0.1:1/v1", api_key="k"))
    check_transport_security(Settings(base_url="http://x.example/v1", api_key=None))
    with pytest.raises(UsageError, match="clear text"):
        check_transport_security(Settings(base_url="http://x.example/v1", api_key="k"))
    check_transport_security(
        Settings(base_url="http://x.example/v1", api_key="k", allow_insecure=True)
    )
    with pytest.raises(UsageError, match="http:// or https://"):
        check_transport_security(Settings(base_url="ftp://x.example/v1"))


def test_redaction_masks_every_registered_key() -> None:
    register_secret("gr-0123456789abcdef")
    register_secret("abc")  # too short to be a key: never masks ordinary words
    assert redact("key gr-0123456789abcdef and abc") == "key gr-…cdef and abc"
    assert mask("short") == "…"
