"""The llamacpp profile (llama-server --rerank): its default token limit keeps every request
inside llama-server's default physical batch, and the real CLI speaks its dialect."""

from __future__ import annotations

from rerank_cli.core.long_documents import document_limit
from rerank_cli.providers import tokens
from rerank_cli.settings import load
from tests.conftest import RunCli
from tests.server import RerankServer

QUERY = "liquid nitrogen"


def test_the_default_limit_fits_the_default_ubatch() -> None:
    settings = load({}, {"profile": "llamacpp"}, config={})
    assert settings.base_url == "http://127.0.0.1:8080/v1"
    assert settings.instruction_mode == "query"
    limit = document_limit(settings, QUERY).max_tokens
    assert limit is not None
    # Query, document and the Qwen3 prompt together within llama-server's -ub 512.
    prompt = tokens.qwen3_reranker_prompt_tokens(QUERY, "x " * (limit - 1))
    assert 400 < limit < 512
    assert prompt <= 512
    # A bigger server: one line of config.
    bigger = load(
        {}, {"profile": "llamacpp"}, config={"profiles": {"llamacpp": {"context_tokens": 8192}}}
    )
    assert document_limit(bigger, QUERY).max_tokens > 8000


def test_a_long_document_is_scored_in_windows_the_server_takes(
    cli: RunCli, server: RerankServer
) -> None:
    server.api_key = None  # llama-server runs without a key unless --api-key
    server.model_required = False  # it serves its GGUF whatever the name
    server.max_document_tokens = 512  # more is an error, as llama-server's default -ub
    long = " ".join(["filler words about gardens and trains"] * 400) + " liquid nitrogen"
    args = ("-P", "llamacpp", "--base-url", server.base_url, "-o", "jsonl")
    result = cli(QUERY, long, "a short one", *args)
    assert result.exit_code == 0, result.stderr
    best = result.records()[0]
    assert best["index"] == 0 and best["chunk"]["index"] > 0
    sent = [d for r in server.requests if r.method == "POST" for d in r.documents]
    assert len(sent) > 3  # windows, each accepted
    assert all("authorization" not in r.headers for r in server.requests)  # no key by default


def test_rerank_profiles_name_shows_its_notes(cli: RunCli) -> None:
    listed = cli("profiles", "-o", "jsonl")
    assert any(r["profile"] == "llamacpp" for r in listed.records())
    result = cli("profiles", "llamacpp", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    fields = {r["field"]: r["value"] for r in result.records()}
    assert fields["url"] == "http://127.0.0.1:8080/v1/rerank"
    assert fields["key variables"] == "LLAMA_API_KEY; no key needed"
    assert fields["context tokens"] == "512"
    assert "--ubatch-size" in fields["notes"] and "--rerank" in fields["notes"]
    # In a table, a note's brackets are text, not markup.
    table = cli("profiles", "llamacpp", "-o", "table", width=200)
    assert "[profiles.llamacpp]" in table.text
    vllm = {r["field"]: r["value"] for r in cli("profiles", "vllm", "-o", "jsonl").records()}
    assert vllm["instruction mode"] == "field ('instruction')"
    tei = {r["field"]: r["value"] for r in cli("profiles", "tei", "-o", "jsonl").records()}
    assert tei["fields sent"] == "truncate = false, raw_scores = false"


def test_rerank_profiles_of_an_unknown_name_is_a_usage_error(cli: RunCli) -> None:
    result = cli("profiles", "llama")
    assert result.exit_code == 2
    assert "unknown profile 'llama' (known: " in result.stderr
