"""Provider profiles through the real CLI against the loopback server made to speak each
provider's dialect: paths, field names, response shapes, keys that never cross providers,
profile selection and [profiles.NAME] sections, `rerank profiles` / `rerank tasks`, and the
per-request document and token limits."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, CliResult, RunCli
from tests.server import RecordedRequest, RerankServer, score

QUERY = "cat dog"
DOCS = ("the cat sat on the mat", "stock market news", "a cat chased a dog", "dogs bark")
INSTRUCTION = "Given a pet question, retrieve passages about pets"
INSTRUCTED = f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}"


def posts(server: RerankServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST"]


def write_config(env: Mapping[str, str], text: str) -> None:
    directory = Path(env["RERANK_CONFIG_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.toml").write_text(text, encoding="utf-8")


def ranked_texts(result: CliResult) -> list[str]:
    return [record["text"] for record in result.records()]


def by_score(query: str, docs: tuple[str, ...]) -> list[str]:
    return sorted(docs, key=lambda d: -score(query, d))


@dataclass(frozen=True)
class Dialect:
    """How to make the test server speak one provider's API, and what its request must be."""

    profile: str
    key_env: str
    root: Callable[[RerankServer], str]  # the --base-url
    path: str
    body: Callable[[str], dict[str, Any]]  # model → the exact request body (with -I given)
    shape: str = "results"
    documents_field: str = "documents"
    model_required: bool = True
    query_sent: str = QUERY
    extra_models: tuple[str, ...] = field(default=())

    def serve(self, server: RerankServer) -> None:
        server.paths = {self.path}
        server.shape = self.shape  # type: ignore[assignment]
        server.documents_field = self.documents_field
        server.model_required = self.model_required
        for model in self.extra_models:
            server.models[model] = ("rerank", 0.001)


def _plain(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "query": QUERY, "documents": list(DOCS), **extra}


DIALECTS = [
    Dialect(
        "tei",
        "TEI_API_KEY",
        lambda s: s.url,
        "/rerank",
        lambda _: {"query": QUERY, "texts": list(DOCS), "truncate": False, "raw_scores": False},
        shape="tei",
        documents_field="texts",
        model_required=False,
    ),
    Dialect(
        "dashscope",
        "DASHSCOPE_API_KEY",
        lambda s: s.base_url,
        "/v1/reranks",
        lambda m: _plain(m, instruct=INSTRUCTION),
        extra_models=("qwen3-rerank",),
    ),
    Dialect(
        "voyage",
        "VOYAGE_API_KEY",
        lambda s: s.base_url,
        "/v1/rerank",
        lambda m: {**_plain(m, truncation=False), "query": INSTRUCTED},
        shape="data",
        query_sent=INSTRUCTED,
        extra_models=("rerank-2.5",),
    ),
    Dialect(
        "cohere",
        "CO_API_KEY",
        lambda s: s.url + "/v2",
        "/v2/rerank",
        lambda m: _plain(m, max_tokens_per_doc=4096),
        extra_models=("rerank-v3.5",),
    ),
    Dialect(
        "infinity",
        "INFINITY_API_KEY",
        lambda s: s.url,
        "/rerank",
        _plain,
        extra_models=("mixedbread-ai/mxbai-rerank-xsmall-v1",),
    ),
    Dialect(
        "jina",
        "JINA_API_KEY",
        lambda s: s.base_url,
        "/v1/rerank",
        _plain,
        extra_models=("jina-reranker-v2-base-multilingual",),
    ),
    Dialect(  # llama-server --rerank: one model, whatever the request names
        "llamacpp",
        "LLAMA_API_KEY",
        lambda s: s.base_url,
        "/v1/rerank",
        lambda m: {**_plain(m), "query": INSTRUCTED},
        query_sent=INSTRUCTED,
        model_required=False,
    ),
]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.profile)
def test_each_profile_speaks_its_providers_dialect(
    cli: RunCli, server: RerankServer, dialect: Dialect
) -> None:
    from rerank_cli.providers.profile import BUILTIN

    dialect.serve(server)
    args = ("-P", dialect.profile, "--base-url", dialect.root(server), "-o", "jsonl")
    result = cli(QUERY, *DOCS, *args, "-I", INSTRUCTION, env={dialect.key_env: TEST_KEY})
    assert result.exit_code == 0, result.stderr
    [request] = posts(server)
    assert request.path == dialect.path
    assert request.body == dialect.body(BUILTIN[dialect.profile].model)  # no top_n, ever
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    # The answer, in the provider's shape, is read back into the right ranking.
    assert ranked_texts(result) == by_score(dialect.query_sent, DOCS)
    assert [r["score"] for r in result.records()] == sorted(
        (score(dialect.query_sent, d) for d in DOCS), reverse=True
    )


def test_cohere_is_told_the_limit_documents_were_cut_to(cli: RunCli, server: RerankServer) -> None:
    cohere = next(d for d in DIALECTS if d.profile == "cohere")
    cohere.serve(server)
    args = ("-P", "cohere", "--base-url", cohere.root(server), "--max-tokens", "300")
    # The second of Cohere's key variables works as well.
    result = cli(QUERY, *DOCS, *args, env={"COHERE_API_KEY": TEST_KEY})
    assert result.exit_code == 0, result.stderr
    assert posts(server)[0].body["max_tokens_per_doc"] == 300


# ---------------------------------------------------------------------------------------------
# keys stay with their provider


def test_a_gigarouter_key_is_no_cohere_key(cli: RunCli, server: RerankServer) -> None:
    env = {"GR_KEY": TEST_KEY, "RERANK_API_KEY": TEST_KEY}
    result = cli(QUERY, *DOCS, "-P", "cohere", "--base-url", server.url + "/v2", env=env)
    assert result.exit_code == 3
    assert "CO_API_KEY" in result.stderr
    assert "GR_KEY" not in result.stderr
    assert TEST_KEY not in result.stderr
    assert posts(server) == []


@pytest.mark.parametrize("profile", ["vllm", "tei", "infinity", "jina"])
def test_gr_key_is_never_sent_to_another_profile(
    cli: RunCli, server: RerankServer, isolated_env: dict[str, str], profile: str
) -> None:
    server.api_key = None  # a local server that takes any request
    server.paths = {"/v1/rerank"}
    server.documents_field = "texts" if profile == "tei" else "documents"
    server.model_required = False
    write_config(isolated_env, f'api_key = "{TEST_KEY}-config"\n')
    env = {"GR_KEY": TEST_KEY, "RERANK_API_KEY": TEST_KEY + "-2"}
    result = cli(QUERY, *DOCS, "-P", profile, "--base-url", server.base_url, env=env)
    if profile == "jina":  # hosted: a key is required, and there is none for it
        assert result.exit_code == 3
        assert "JINA_API_KEY" in result.stderr
        assert posts(server) == []
        return
    assert result.exit_code == 0, result.stderr
    [request] = posts(server)
    assert "authorization" not in request.headers
    assert TEST_KEY not in str(request.headers) and TEST_KEY.encode() not in request.raw


def test_the_config_api_key_is_gigarouters_only(
    cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    write_config(isolated_env, f'api_key = "{TEST_KEY}"\n')
    result = cli(QUERY, *DOCS, "--base-url", server.base_url)
    assert result.exit_code == 0, result.stderr  # the default profile uses it …
    assert posts(server)[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    result = cli(QUERY, *DOCS, "-P", "jina", "--base-url", server.base_url)
    assert result.exit_code == 3  # … no other does
    assert "JINA_API_KEY" in result.stderr
    assert len(posts(server)) == 1


def test_api_key_option_goes_to_the_profile_chosen(cli: RunCli, server: RerankServer) -> None:
    cohere = next(d for d in DIALECTS if d.profile == "cohere")
    cohere.serve(server)
    args = ("-P", "cohere", "--base-url", cohere.root(server), "--api-key", TEST_KEY)
    result = cli(QUERY, *DOCS, *args, env={"CO_API_KEY": "co-wrong"})
    assert result.exit_code == 0, result.stderr
    assert posts(server)[0].headers["authorization"] == f"Bearer {TEST_KEY}"


# ---------------------------------------------------------------------------------------------
# choosing a profile


def serve_tei(server: RerankServer) -> None:
    next(d for d in DIALECTS if d.profile == "tei").serve(server)


@pytest.mark.parametrize(
    ("args", "env", "config"),
    [
        pytest.param([], {}, 'profile = "tei"\n', id="config"),
        pytest.param([], {"RERANK_PROFILE": "tei"}, 'profile = "cohere"\n', id="env beats config"),
        pytest.param(["-P", "tei"], {"RERANK_PROFILE": "cohere"}, "", id="option beats env"),
    ],
)
def test_profile_from_option_environment_or_config(
    cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    args: list[str],
    env: dict[str, str],
    config: str,
) -> None:
    serve_tei(server)
    write_config(isolated_env, config)
    result = cli(
        QUERY, *DOCS, "--base-url", server.url, *args, env={"TEI_API_KEY": TEST_KEY, **env}
    )
    assert result.exit_code == 0, result.stderr
    [request] = posts(server)
    assert request.path == "/rerank"
    assert set(request.body) == {"query", "texts", "truncate", "raw_scores"}


def test_a_builtin_profile_moved_by_the_config(
    cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    cohere = next(d for d in DIALECTS if d.profile == "cohere")
    cohere.serve(server)
    write_config(
        isolated_env,
        f'[profiles.cohere]\nbase_url = "{server.url}/v2"\nkey_env = ["MY_CO_KEY"]\n'
        "max_documents = 2\n",
    )
    env = {"MY_CO_KEY": TEST_KEY, "CO_API_KEY": "co-not-this-one"}
    result = cli(QUERY, *DOCS, "-P", "cohere", "-o", "jsonl", env=env)
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in posts(server)] == ["/v2/rerank", "/v2/rerank"]
    assert {r.headers["authorization"] for r in posts(server)} == {f"Bearer {TEST_KEY}"}
    assert ranked_texts(result) == by_score(QUERY, DOCS)


def test_a_hosted_profile_moved_without_key_env_is_refused(
    cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    write_config(isolated_env, f'[profiles.cohere]\nbase_url = "{server.url}/v2"\n')
    result = cli(QUERY, *DOCS, "-P", "cohere", env={"CO_API_KEY": TEST_KEY})
    assert result.exit_code == 2
    assert "key_env" in result.stderr and "CO_API_KEY" in result.stderr
    assert TEST_KEY not in result.stderr
    assert posts(server) == []


def test_a_new_profile_from_a_builtin(
    cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    write_config(
        isolated_env,
        f'[profiles.lab]\nbase = "vllm"\nbase_url = "{server.base_url}"\n'
        'key_env = "LAB_KEY"\nmax_documents = 3\n',
    )
    docs = tuple(f"document {n} about a cat" for n in range(7))
    result = cli(QUERY, *docs, "-P", "lab", "-I", INSTRUCTION, env={"LAB_KEY": TEST_KEY})
    assert result.exit_code == 0, result.stderr
    assert sorted(server.batch_sizes) == [1, 3, 3]  # concurrent: any arrival order
    assert all(r.body["instruction"] == INSTRUCTION for r in posts(server))  # vllm's field
    assert all(r.headers["authorization"] == f"Bearer {TEST_KEY}" for r in posts(server))


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["-P", "nosuch"], "", "unknown profile 'nosuch'"),
        ([], 'profile = "nosuch"\n', "unknown profile 'nosuch'"),
        (["-P", "lab"], '[profiles.lab]\nbase = "vllm"\nbogus = 1\n', "unknown field 'bogus'"),
        (["-P", "lab"], '[profiles.lab]\nbase_url = "http://x"\n', "set base to one of"),
        (["-P", "vllm"], "[profiles.vllm]\nmax_documents = -1\n", "max_documents"),
    ],
)
def test_bad_profiles_are_usage_errors(
    cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    args: list[str],
    config: str,
    message: str,
) -> None:
    write_config(isolated_env, config)
    result = cli(QUERY, *DOCS, "--base-url", server.base_url, *args, env={"GR_KEY": TEST_KEY})
    assert result.exit_code == 2
    assert message in result.stderr
    assert posts(server) == []


def test_a_top_level_base_url_or_model_is_the_default_profiles_only() -> None:
    """A config base_url set for one provider must not carry another provider's key there."""
    from rerank_cli.settings.resolution import resolve

    config = {"base_url": "https://proxy.example/v1", "model": "BAAI/bge-reranker-base"}
    env = {"CO_API_KEY": "co-1"}
    cohere = resolve({"profile": "cohere"}, env, config)
    assert cohere.rerank_url == "https://api.cohere.com/v2/rerank"
    assert cohere.model == "rerank-v3.5"
    assert resolve({}, env, config).rerank_url == "https://proxy.example/v1/rerank"
    # Set with the profile they are for, they apply; an option always applies.
    together = resolve({}, {"RERANK_PROFILE": "vllm"}, {**config, "profile": "vllm"})
    assert together.rerank_url == "https://proxy.example/v1/rerank"
    assert together.model == "BAAI/bge-reranker-base"
    assert resolve({}, {"RERANK_PROFILE": "vllm"}, config).model == "Qwen/Qwen3-Reranker-0.6B"
    env_url = resolve({}, {"RERANK_BASE_URL": "http://gpu:1/v1"}, {"profile": "vllm"})
    assert env_url.rerank_url == "http://gpu:1/v1/rerank"
    option = resolve({"profile": "cohere", "base_url": "http://127.0.0.1:9/v2"}, env, config)
    assert option.rerank_url == "http://127.0.0.1:9/v2/rerank"
    assert option.model == "rerank-v3.5"


# ---------------------------------------------------------------------------------------------
# rerank profiles, rerank tasks


DISTINCT = "co-v4lue-that-must-never-show-7731"


def test_profiles_lists_every_profile_and_which_key_is_set_never_the_key(
    cli: RunCli, isolated_env: dict[str, str]
) -> None:
    from rerank_cli.providers.profile import BUILTIN

    write_config(
        isolated_env,
        '[profiles.lab]\nbase = "vllm"\nbase_url = "http://gpu:8000/v1"\nkey_env = "LAB_KEY"\n',
    )
    env = {"COHERE_API_KEY": DISTINCT, "LAB_KEY": DISTINCT + "-lab"}
    result = cli("profiles", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr
    rows = {row["profile"]: row for row in orjson_loads(result.stdout)}
    assert list(rows) == [*BUILTIN, "lab"]
    assert rows["cohere"]["key variables"] == "CO_API_KEY COHERE_API_KEY (set)"
    assert rows["gigarouter"]["key variables"] == "GR_KEY RERANK_API_KEY"
    assert rows["gigarouter"]["from"] == "built-in, default"
    assert rows["lab"] == {
        "profile": "lab",
        "url": "http://gpu:8000/v1/rerank",
        "key variables": "LAB_KEY (set)",
        "from": "config (from vllm)",
    }
    assert rows["tei"]["url"] == "http://localhost:8080/rerank"
    assert rows["dashscope"]["url"].endswith("/compatible-api/v1/reranks")
    for fmt in ("json", "jsonl", "table", "tsv"):
        shown = cli("profiles", "-o", fmt, env=env)
        assert shown.exit_code == 0
        assert DISTINCT not in shown.text + shown.stderr
        assert "COHERE_API_KEY (set)" in shown.text.replace("\n", " ") or fmt == "table"


def test_profiles_table(cli: RunCli) -> None:
    result = cli("profiles", "-o", "table", env={"JINA_API_KEY": DISTINCT}, width=200)
    assert result.exit_code == 0
    line = next(line for line in result.text.splitlines() if line.startswith("jina"))
    assert "JINA_API_KEY (set)" in line
    assert DISTINCT not in result.text


def test_tasks_lists_the_presets(cli: RunCli) -> None:
    from rerank_cli.providers.instructions import TASKS

    result = cli("tasks", "-o", "jsonl")
    assert result.exit_code == 0
    assert {r["task"]: r["instruction"] for r in result.records()} == TASKS
    assert [r["task"] for r in result.records()] == ["web", "code", "qa", "docs", "logs", "dedup"]
    assert all(r["use for"] for r in result.records())
    table = cli("tasks", "-o", "table", width=300)
    assert table.exit_code == 0
    assert TASKS["code"] in table.text


def orjson_loads(data: bytes) -> Any:
    import orjson

    return orjson.loads(data)


# ---------------------------------------------------------------------------------------------
# per-request limits


def test_tei_batches_hold_at_most_32_documents(cli: RunCli, server: RerankServer) -> None:
    serve_tei(server)
    server.max_documents = 32  # TEI's default --max-client-batch-size
    docs = [f"document {n} with a cat" for n in range(70)]
    result = cli(
        QUERY,
        "-i",
        "-",
        "-P",
        "tei",
        "--base-url",
        server.url,
        "-o",
        "jsonl",
        stdin="\n".join(docs).encode(),
        env={"TEI_API_KEY": TEST_KEY},
    )
    assert result.exit_code == 0, result.stderr
    sizes = [len(r.body["texts"]) for r in posts(server)]
    assert sorted(sizes, reverse=True) == [32, 32, 6]  # never one over, never a 413 to split
    assert len(result.records()) == 70


@pytest.mark.parametrize(
    ("mode", "instruction"),
    [("field", None), ("query", INSTRUCTION * 3), ("template", INSTRUCTION)],
)
def test_a_token_budget_per_request_splits_batches(
    cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    mode: str,
    instruction: str | None,
) -> None:
    from rerank_cli.providers.tokens import QwenTokenizer

    budget = 400
    write_config(
        isolated_env,
        f'[profiles.budget]\nbase = "vllm"\nbase_url = "{server.base_url}"\n'
        f'key_env = "LAB_KEY"\nmax_tokens_per_request = {budget}\n'
        f'instruction_mode = "{mode}"\n',
    )
    docs = [f"cat number {n} " + "and the dog " * (n % 7 + 3) for n in range(30)]
    extra = ["-I", instruction] if instruction else []
    result = cli(
        QUERY,
        "-i",
        "-",
        "-P",
        "budget",
        *extra,
        stdin="\n".join(docs).encode(),
        env={"LAB_KEY": TEST_KEY},
    )
    assert result.exit_code == 0, result.stderr
    count = QwenTokenizer().count
    used = []
    for request in posts(server):
        query_tokens = count(request.body["query"]) + count(request.body.get("instruction", ""))
        used.append(sum(count(d) + query_tokens for d in request.documents))
    assert max(used) <= budget
    assert len(used) <= math.ceil(sum(used) / budget) + 2  # batches are full, not singletons
    assert sum(len(r.documents) for r in posts(server)) == 30
