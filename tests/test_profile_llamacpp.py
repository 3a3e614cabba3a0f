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
