"""Instructions through the real CLI, as the loopback server receives them: -I, --task presets,
their precedence (option → environment → config), each delivery mode, and the score cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, CliResult, RunCli
from tests.server import RecordedRequest, RerankServer, score

QUERY = "apple pie"
DOCS = ("a recipe for apple pie", "engine oil for a car", "pie charts in a report")
INSTRUCTION = "Given a cooking question, retrieve recipes"

# The Qwen3-Reranker prompt exactly as /work/shared/reference/providers.md quotes the model card,
# written out here rather than imported, so that the code cannot agree with itself.
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
MODEL_DEFAULT = "Given a web search query, retrieve relevant passages that answer the query"

# The issue names these presets; `web` is the model's own default instruction.
PRESETS = ("web", "code", "qa", "docs", "logs", "dedup")


def posts(server: RerankServer) -> list[RecordedRequest]:
    """Every POST the server got, whatever its path (profiles use other paths)."""
    return [r for r in server.requests if r.method == "POST"]


def only_body(server: RerankServer) -> dict[str, Any]:
    sent = posts(server)
    assert len(sent) == 1, [r.path for r in sent]
    body = sent[0].body
    assert isinstance(body, dict)
    return body


def write_config(env: Mapping[str, str], text: str) -> None:
    directory = Path(env["RERANK_CONFIG_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.toml").write_text(text, encoding="utf-8")


def rank(api_cli: RunCli, *args: str, env: Mapping[str, str] | None = None) -> CliResult:
    result = api_cli(QUERY, *DOCS, "-o", "jsonl", "--no-cache", *args, env=env)
    assert result.exit_code == 0, result.stderr
    return result


def ranked_texts(result: CliResult) -> list[str]:
    return [record["text"] for record in result.records()]


# ---------------------------------------------------------------------------------------------
# query mode: gigarouter's default


def test_instruction_travels_in_the_query_on_gigarouter(
    api_cli: RunCli, server: RerankServer
) -> None:
    rank(api_cli, "-I", INSTRUCTION)
    body = only_body(server)
    assert body == {
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "query": f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}",
        "documents": list(DOCS),
    }


def test_without_an_instruction_the_query_is_untouched(
    api_cli: RunCli, server: RerankServer
) -> None:
    rank(api_cli)
    assert only_body(server)["query"] == QUERY


@pytest.mark.parametrize("name", PRESETS)
def test_each_task_preset_sends_its_instruction(
    api_cli: RunCli, server: RerankServer, name: str
) -> None:
    from rerank_cli.providers.instructions import TASKS

    rank(api_cli, "--task", name)
    assert only_body(server)["query"] == f"<Instruct>: {TASKS[name]}\n<Query>: {QUERY}"


def test_presets_are_distinct_and_web_is_the_model_default() -> None:
    from rerank_cli.providers.instructions import TASKS

    assert tuple(TASKS) == PRESETS
    assert TASKS["web"] == MODEL_DEFAULT
    assert len(set(TASKS.values())) == len(TASKS)


def test_unknown_task_is_a_usage_error(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli(QUERY, *DOCS, "--task", "poetry")
    assert result.exit_code == 2
    assert "poetry" in result.stderr
    assert posts(server) == []


# ---------------------------------------------------------------------------------------------
# precedence


OPTION_I, ENV_I, CONFIG_I = "from the option", "from the environment", "from the config"


@pytest.mark.parametrize(
    ("args", "env", "config", "expected"),
    [
        pytest.param(["-I", OPTION_I, "--task", "code"], {}, "", OPTION_I, id="-I beats --task"),
        pytest.param(
            ["-I", OPTION_I],
            {"RERANK_INSTRUCTION": ENV_I, "RERANK_TASK": "qa"},
            f'instruction = "{CONFIG_I}"\n',
            OPTION_I,
            id="-I beats env and config",
        ),
        pytest.param(
            ["--task", "code"],
            {"RERANK_INSTRUCTION": ENV_I},
            "",
            "code",
            id="option --task beats env instruction",
        ),
        pytest.param(
            [],
            {"RERANK_INSTRUCTION": ENV_I, "RERANK_TASK": "qa"},
            "",
            ENV_I,
            id="env instruction beats env task",
        ),
        pytest.param(
            [],
            {"RERANK_TASK": "logs"},
            f'instruction = "{CONFIG_I}"\n',
            "logs",
            id="env task beats config instruction",
        ),
        pytest.param(
            [],
            {},
            f'instruction = "{CONFIG_I}"\ntask = "dedup"\n',
            CONFIG_I,
            id="config instruction beats config task",
        ),
        pytest.param([], {}, 'task = "docs"\n', "docs", id="config task"),
    ],
)
def test_instruction_precedence(
    api_cli: RunCli,
    server: RerankServer,
    isolated_env: dict[str, str],
    args: list[str],
    env: dict[str, str],
    config: str,
    expected: str,
) -> None:
    from rerank_cli.providers.instructions import TASKS

    write_config(isolated_env, config)
    rank(api_cli, *args, env=env)
    instruction = TASKS.get(expected, expected)
    assert only_body(server)["query"] == f"<Instruct>: {instruction}\n<Query>: {QUERY}"


def test_instruction_mode_from_environment_and_config(
    api_cli: RunCli, server: RerankServer, isolated_env: dict[str, str]
) -> None:
    write_config(isolated_env, 'instruction_mode = "none"\n')
    rank(api_cli, "-I", INSTRUCTION)
    assert only_body(server)["query"] == QUERY
    server.requests.clear()
    rank(api_cli, "-I", INSTRUCTION, env={"RERANK_INSTRUCTION_MODE": "template"})
    assert only_body(server)["query"].startswith(PREFIX)
    server.requests.clear()
    rank(api_cli, "-I", INSTRUCTION, "--instruction-mode", "query")
    assert only_body(server)["query"] == f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}"


# ---------------------------------------------------------------------------------------------
# field mode


@pytest.mark.parametrize(
    ("profile", "key_env", "path", "field", "model"),
    [
        ("vllm", "VLLM_API_KEY", "/v1/rerank", "instruction", "Qwen/Qwen3-Reranker-0.6B"),
        ("siliconflow", "SILICONFLOW_API_KEY", "/v1/rerank", "instruction", None),
        ("dashscope", "DASHSCOPE_API_KEY", "/v1/reranks", "instruct", "qwen3-rerank"),
    ],
)
def test_field_mode_sends_the_profiles_field(
    cli: RunCli,
    server: RerankServer,
    profile: str,
    key_env: str,
    path: str,
    field: str,
    model: str | None,
) -> None:
    from rerank_cli.providers.profile import BUILTIN

    model = model or BUILTIN[profile].model
    server.paths = {path}
    server.models[model] = ("rerank", 0.001)
    args = (QUERY, *DOCS, "-P", profile, "--base-url", server.base_url, "-I", INSTRUCTION)
    result = cli(*args, "-o", "jsonl", env={key_env: TEST_KEY})
    assert result.exit_code == 0, result.stderr
    request = posts(server)[0]
    assert request.path == path
    assert request.body == {
        "model": model,
        "query": QUERY,
        "documents": list(DOCS),
        field: INSTRUCTION,
    }
    assert ranked_texts(result) == sorted(DOCS, key=lambda d: -score(QUERY, d))


@pytest.mark.parametrize("profile", ["gigarouter", "cohere", "tei", "voyage"])
def test_field_mode_on_a_profile_without_a_field_is_refused(
    cli: RunCli, server: RerankServer, profile: str
) -> None:
    args = (QUERY, *DOCS, "-P", profile, "--base-url", server.base_url, "--api-key", TEST_KEY)
    result = cli(*args, "-I", INSTRUCTION, "--instruction-mode", "field")
    assert result.exit_code == 2, result.stderr
    assert "no instruction field" in result.stderr
    assert "--instruction-mode query or template" in result.stderr
    assert posts(server) == []


# ---------------------------------------------------------------------------------------------
# template mode


def template_request(instruction: str, query: str, docs: tuple[str, ...]) -> dict[str, Any]:
    return {
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "query": f"{PREFIX}<Instruct>: {instruction}\n<Query>: {query}\n",
        "documents": [f"<Document>: {doc}{SUFFIX}" for doc in docs],
    }


@pytest.mark.parametrize("profile", ["gigarouter", "vllm"])
def test_template_mode_sends_the_whole_qwen3_prompt(
    cli: RunCli, server: RerankServer, profile: str
) -> None:
    args = ("-P", profile, "--base-url", server.base_url, "--api-key", TEST_KEY)
    result = cli(QUERY, *DOCS, *args, "-I", INSTRUCTION, "--instruction-mode", "template")
    assert result.exit_code == 0, result.stderr
    body = only_body(server)
    assert body == template_request(INSTRUCTION, QUERY, DOCS)  # and no instruction field
    # Query and document join into the model card's prompt, character for character.
    joined = body["query"] + body["documents"][0]
    assert joined == (
        f"{PREFIX}<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {DOCS[0]}{SUFFIX}"
    )
    # The output shows the documents as read; the ranking is the server's scores of what it got.
    wrapped = dict(zip(body["documents"], DOCS, strict=True))
    expected = sorted(body["documents"], key=lambda d: -score(body["query"], d))
    assert ranked_texts(result) == [wrapped[d] for d in expected]


def test_template_mode_without_an_instruction_uses_the_model_default(
    api_cli: RunCli, server: RerankServer
) -> None:
    rank(api_cli, "--instruction-mode", "template")
    assert only_body(server) == template_request(MODEL_DEFAULT, QUERY, DOCS)


def test_template_mode_with_a_task(api_cli: RunCli, server: RerankServer) -> None:
    from rerank_cli.providers.instructions import TASKS

    rank(api_cli, "--task", "code", "--instruction-mode", "template")
    assert only_body(server) == template_request(TASKS["code"], QUERY, DOCS)


# ---------------------------------------------------------------------------------------------
# none


def test_none_mode_sends_nothing_of_the_instruction(api_cli: RunCli, server: RerankServer) -> None:
    result = rank(api_cli, "-I", INSTRUCTION, "--instruction-mode", "none")
    assert only_body(server) == {
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "query": QUERY,
        "documents": list(DOCS),
    }
    assert ranked_texts(result) == sorted(DOCS, key=lambda d: -score(QUERY, d))


def test_query_mode_ranking_follows_the_scores_of_the_query_sent(
    api_cli: RunCli, server: RerankServer
) -> None:
    # Words of the instruction reach the server's scorer: the ranking must follow them.
    docs = ("recipes", "apple", "cooking question")
    result = api_cli(QUERY, *docs, "-o", "jsonl", "-I", INSTRUCTION)
    assert result.exit_code == 0, result.stderr
    sent = only_body(server)["query"]
    assert ranked_texts(result) == sorted(docs, key=lambda d: -score(sent, d))
    assert ranked_texts(result) != sorted(docs, key=lambda d: -score(QUERY, d))


# ---------------------------------------------------------------------------------------------
# the score cache


def test_instruction_and_mode_are_part_of_the_cache_key(
    api_cli: RunCli, server: RerankServer
) -> None:
    def billed(*args: str) -> int:
        before = server.billed_documents
        result = api_cli(QUERY, *DOCS, "-o", "jsonl", *args)
        assert result.exit_code == 0, result.stderr
        return server.billed_documents - before

    assert billed("-I", INSTRUCTION) == 3
    assert billed("-I", INSTRUCTION) == 0  # the same run again is free
    assert billed("-I", INSTRUCTION + ".") == 3  # another instruction is another score
    assert billed("-I", INSTRUCTION, "--instruction-mode", "template") == 3
    assert billed("-I", INSTRUCTION, "--instruction-mode", "none") == 3
    assert billed("-I", INSTRUCTION, "--instruction-mode", "template") == 0
    assert billed("--task", "code") == 3
    assert billed("--task", "code") == 0
    assert billed() == 3  # no instruction at all
    assert billed("--instruction-mode", "query") == 0  # … which is the default mode
