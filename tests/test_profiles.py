"""Provider profiles: request bodies against each provider's documented JSON, response parsing of
each provider's documented responses, config overrides and their errors, `rerank profiles` rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.engines.api.protocol import build_body as build_request
from rerank_cli.engines.api.protocol import parse_response
from rerank_cli.errors import BadResponse, UsageError
from rerank_cli.jobs.catalog_job import list_profiles
from rerank_cli.providers.instructions import MODES
from rerank_cli.providers.profile import (
    BUILTIN,
    DEFAULT_PROFILE,
    RESERVED_FIELDS,
    Profile,
    find_key,
    resolve_profile,
    tokenizer_family,
)
from rerank_cli.settings import resolution as rerank_settings

DATA = Path(__file__).parent / "data" / "providers"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((DATA / f"{name}.json").read_bytes())
    return data


def request_for(name: str, profile: Profile | None = None, mode: str | None = None) -> Any:
    profile = profile or BUILTIN[name]
    call = recorded(name)["call"]
    return build_request(
        profile,
        call["model"],
        call["query"],
        call["texts"],
        call["instruction"],
        profile.instruction_mode if mode is None else mode,
    )


def test_every_builtin_profile_has_a_recorded_example() -> None:
    assert {path.stem for path in DATA.glob("*.json")} == set(BUILTIN)
    for name in BUILTIN:
        assert recorded(name)["_source"]["request"], name


# ---------------------------------------------------------------------------------------------
# Requests


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_request_has_the_documented_shape(name: str) -> None:
    example = recorded(name)
    documented = set(example["documented_request_fields"])
    body = request_for(name)
    assert body == example["expected_request"]
    # Every field we send is one the provider documents, the documents under the provider's name.
    assert set(body) <= documented
    assert set(example["example_request"]) <= documented
    assert BUILTIN[name].documents_field in example["example_request"]
    assert not set(body) & {"top_n", "top_k", "return_documents"}
    assert orjson.loads(orjson.dumps(body)) == body


def test_instruction_fields_per_profile() -> None:
    fields = {name: (p.instruction_field, p.instruction_mode) for name, p in BUILTIN.items()}
    assert fields == {
        "gigarouter": (None, "query"),  # its schema documents no instruction field
        "cohere": (None, "none"),
        "jina": (None, "none"),
        "voyage": (None, "query"),
        "vllm": ("instruction", "field"),
        "tei": (None, "none"),
        "infinity": (None, "none"),
        "siliconflow": ("instruction", "field"),
        "dashscope": ("instruct", "field"),
        "together": (None, "none"),
        "novita": (None, "none"),
        "llamacpp": (None, "query"),  # the GGUF's rerank template fills {query} only
    }


@pytest.mark.parametrize("name", sorted(n for n, p in BUILTIN.items() if not p.instruction_field))
def test_field_mode_on_a_profile_without_a_field_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="no instruction field"):
        request_for(name, mode="field")


def test_template_mode_on_vllm_sends_the_prompt_and_no_field() -> None:
    body = request_for("vllm", mode="template")
    instruction = recorded("vllm")["call"]["instruction"]
    assert "instruction" not in body
    assert body["query"].endswith(
        f"<|im_start|>user\n<Instruct>: {instruction}\n<Query>: What is the capital of China?\n"
    )
    assert body["documents"][0] == (
        "<Document>: The capital of China is Beijing.<|im_end|>\n<|im_start|>assistant\n"
        "<think>\n\n</think>\n\n"
    )


def test_urls() -> None:
    urls = {name: profile.url for name, profile in BUILTIN.items()}
    assert urls == {
        "gigarouter": "https://gigarouter.ai/v1/rerank",
        "cohere": "https://api.cohere.com/v2/rerank",
        "jina": "https://api.jina.ai/v1/rerank",
        "voyage": "https://api.voyageai.com/v1/rerank",
        "vllm": "http://localhost:8000/v1/rerank",
        "tei": "http://localhost:8080/rerank",
        "infinity": "http://localhost:7997/rerank",
        "siliconflow": "https://api.siliconflow.com/v1/rerank",
        "dashscope": "https://dashscope.aliyuncs.com/compatible-api/v1/reranks",
        "together": "https://api.together.xyz/v1/rerank",
        "novita": "https://api.novita.ai/openai/v1/rerank",
        "llamacpp": "http://127.0.0.1:8080/v1/rerank",
    }


def test_the_default_profile_agrees_with_the_settings_defaults() -> None:
    default = BUILTIN[DEFAULT_PROFILE]
    assert default.name == "gigarouter"
    assert default.base_url == rerank_settings.DEFAULT_BASE_URL
    assert default.model == rerank_settings.DEFAULT_MODEL
    assert default.key_env == ("GR_KEY", "RERANK_API_KEY")
    assert (default.context_tokens, default.tokenizer) == (32_768, "qwen3")


def test_documented_limits() -> None:
    limits = {
        name: (p.max_documents, p.max_tokens_per_doc, p.context_tokens, p.max_tokens_per_request)
        for name, p in BUILTIN.items()
    }
    assert limits["dashscope"] == (500, 4000, None, 120_000)
    assert limits["voyage"] == (1000, None, 32_000, 600_000)
    assert limits["cohere"] == (1000, 4096, None, None)
    assert limits["tei"] == (32, None, None, None)
    assert limits["infinity"] == (2048, None, None, None)
    assert limits["llamacpp"] == (None, None, 512, None)  # llama-server's --ubatch-size default
    for name, profile in BUILTIN.items():
        if None in limits[name]:
            assert profile.notes, f"{name}: unknown limits must be explained in notes"


def test_cohere_gets_the_limit_documents_were_cut_to() -> None:
    call = recorded("cohere")["call"]
    args = (BUILTIN["cohere"], call["model"], call["query"], call["texts"], None, "none")
    assert build_request(*args)["max_tokens_per_doc"] == 4096
    assert build_request(*args, max_tokens_per_doc=30_000)["max_tokens_per_doc"] == 30_000
    # Profiles without such a field never send one.
    vllm = BUILTIN["vllm"]
    body = build_request(vllm, "m", "q", ["d"], None, "none", max_tokens_per_doc=100)
    assert body == {"model": "m", "query": "q", "documents": ["d"]}


def test_extra_fields_cannot_be_changed_through_the_profile() -> None:
    with pytest.raises(TypeError):
        BUILTIN["tei"].extra_fields["truncate"] = True  # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(BUILTIN)),
    mode=st.sampled_from(MODES),
    instruction=st.none() | st.text(max_size=20),
    query=st.text(max_size=20),
    texts=st.lists(st.text(max_size=20), max_size=5),
)
def test_every_request_asks_for_every_score(
    name: str, mode: str, instruction: str | None, query: str, texts: list[str]
) -> None:
    """Invariant: whatever the profile and mode, the body carries every document, in order, and
    nothing that would make the server leave one out (top_n, top_k)."""
    profile = BUILTIN[name]
    if mode == "field" and not profile.instruction_field and instruction:
        return  # refused, tested above
    body = build_request(profile, "model", query, texts, instruction, mode)
    documents = body[profile.documents_field]
    assert len(documents) == len(texts)
    assert not set(body) & RESERVED_FIELDS - {"model", "query"}
    if mode != "template":
        assert documents == texts
    if mode == "none" or (not instruction and mode != "template"):
        assert body["query"] == query


# ---------------------------------------------------------------------------------------------
# Responses


def response_cases() -> list[tuple[str, str]]:
    return [
        (name, key)
        for name in sorted(BUILTIN)
        for key in recorded(name)
        if key.startswith("response")
    ]


@pytest.mark.parametrize(("name", "key"), response_cases())
def test_documented_response_parses_to_the_right_scores(name: str, key: str) -> None:
    example = recorded(name)
    count = len(example["call"]["texts"])
    assert parse_response(orjson.dumps(example[key]), count) == example["scores"]


@pytest.mark.parametrize("name", sorted(n for n in BUILTIN if "documented_response" in recorded(n)))
def test_a_top_n_answer_is_refused_as_incomplete(name: str) -> None:
    """Why we never send top_n: the docs' own examples (top_n < documents) leave documents
    without a score, which the strict parser refuses rather than rank them as missing."""
    example = recorded(name)
    count = len(example["call"]["texts"])
    with pytest.raises(BadResponse, match=f"of {count} documents have no score"):
        parse_response(orjson.dumps(example["documented_response"]), count)


def test_shapes_that_differ_are_really_covered() -> None:
    assert isinstance(recorded("tei")["response"], list)
    assert "text" not in recorded("tei")["response_without_text"][0]
    assert "data" in recorded("voyage")["response"]
    assert isinstance(
        recorded("infinity")["response_with_documents"]["results"][0]["document"], str
    )
    assert recorded("infinity")["response"]["results"][0]["document"] is None
    assert "tokens" in recorded("siliconflow")["response"]
    assert "meta" in recorded("cohere")["response"]
    scores = [r["relevance_score"] for r in recorded("vllm")["response"]["results"]]
    assert scores == sorted(scores, reverse=True)


# ---------------------------------------------------------------------------------------------
# Keys and tokenizers


def test_find_key_takes_the_first_set_variable_and_says_which() -> None:
    gigarouter = BUILTIN["gigarouter"]
    assert find_key(gigarouter, {}) is None
    assert find_key(gigarouter, {"GR_KEY": "", "RERANK_API_KEY": "r"}) == ("RERANK_API_KEY", "r")
    assert find_key(gigarouter, {"GR_KEY": "g", "RERANK_API_KEY": "r"}) == ("GR_KEY", "g")
    cohere = BUILTIN["cohere"]
    assert find_key(cohere, {"GR_KEY": "g"}) is None  # never another provider's key
    assert find_key(cohere, {"COHERE_API_KEY": "c2", "CO_API_KEY": "c1"}) == ("CO_API_KEY", "c1")


def test_local_servers_need_no_key() -> None:
    local = {name for name, p in BUILTIN.items() if not p.key_required}
    assert local == {"vllm", "tei", "infinity", "llamacpp"}
    loopback = ("http://localhost:", "http://127.0.0.1:")
    assert all(BUILTIN[name].base_url.startswith(loopback) for name in local)


def test_tokenizer_family() -> None:
    assert tokenizer_family(BUILTIN["gigarouter"], "Qwen/Qwen3-Reranker-0.6B") == "qwen3"
    assert tokenizer_family(BUILTIN["vllm"], "BAAI/bge-reranker-v2-m3") is None
    assert tokenizer_family(BUILTIN["cohere"], "rerank-v3.5") is None
    # A model name can still tell, whatever the profile.
    assert tokenizer_family(BUILTIN["infinity"], "Qwen/Qwen3-Reranker-4B") == "qwen3"
    # The hint covers an alias the name cannot reveal, for the profile's own model only.
    aliased = resolve_profile("vllm", {"vllm": {"model": "reranker"}})
    assert tokenizer_family(aliased, "reranker") == "qwen3"


# ---------------------------------------------------------------------------------------------
# [profiles.NAME] in the config file


def test_builtin_profiles_resolve_unchanged() -> None:
    for name, profile in BUILTIN.items():
        assert resolve_profile(name, {}) == profile


def test_config_overrides_any_field_of_a_builtin() -> None:
    config = {
        "vllm": {
            "base_url": "http://gpu-box:8000/v1",
            "path": "v2/rerank",
            "instruction_mode": "template",
            "max_documents": 64,
            "context_tokens": 0,
            "key_env": "MY_VLLM_KEY",
            "extra_fields": {"truncate_prompt_tokens": -1},
        }
    }
    profile = resolve_profile("vllm", config)
    assert profile.url == "http://gpu-box:8000/v1/v2/rerank"
    assert profile.instruction_mode == "template"
    assert profile.max_documents == 64
    assert profile.context_tokens is None  # 0: no limit
    assert profile.key_env == ("MY_VLLM_KEY",)
    assert dict(profile.extra_fields) == {"truncate_prompt_tokens": -1}
    untouched = {"model", "instruction_field", "tokenizer", "documents_field", "send_model"}
    for field in untouched:
        assert getattr(profile, field) == getattr(BUILTIN["vllm"], field)


def test_extra_fields_are_replaced_not_merged() -> None:
    """So a field can be removed: TOML has no null to unset one key of a merged table."""
    profile = resolve_profile("tei", {"tei": {"extra_fields": {"truncate": False}}})
    body = build_request(profile, "", "q", ["d"], None, "none")
    assert body == {"query": "q", "texts": ["d"], "truncate": False}


def test_a_new_profile_from_a_builtin() -> None:
    config = {"lab": {"base": "vllm", "base_url": "http://10.0.0.7:9000/v1", "model": "qwen3-rr"}}
    profile = resolve_profile("lab", config)
    assert profile.name == "lab"
    assert profile.url == "http://10.0.0.7:9000/v1/rerank"
    assert profile.model == "qwen3-rr"
    assert profile.key_env == ("VLLM_API_KEY",)  # a vLLM server's key, wherever it runs
    assert profile.instruction_field == "instruction"


def test_a_hosted_key_does_not_follow_base_url_elsewhere_unasked() -> None:
    moved = {"base_url": "https://proxy.example.com/v1"}
    for name, section in (("gigarouter", moved), ("mine", {"base": "gigarouter", **moved})):
        with pytest.raises(UsageError, match=r"\$GR_KEY, \$RERANK_API_KEY.*set key_env"):
            resolve_profile(name, {name: section})
        kept = resolve_profile(name, {name: {**section, "key_env": ["GR_KEY"]}})
        assert kept.key_env == ("GR_KEY",)
    # The same host under another path is the same service.
    same_host = {"gigarouter": {"base_url": "https://gigarouter.ai/v2"}}
    assert resolve_profile("gigarouter", same_host).key_env == ("GR_KEY", "RERANK_API_KEY")


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("nowhere", {}, r"unknown profile 'nowhere' \(known: gigarouter, cohere, .*novita, lab\)"),
        ("cohere", {"cohere": {"top_n": 5}}, r"\[profiles.cohere\]: unknown field 'top_n'"),
        ("cohere", {"cohere": {"colour": "red"}}, r"unknown field 'colour' \(known: base, "),
        ("cohere", {"cohere": {"base": "vllm"}}, "'base' is for new profiles"),
        ("x", {"x": {"model": "m"}}, r"\[profiles.x\] has no base: set base to one of gigarouter"),
        ("x", {"x": {"base": "x"}}, "has base = 'x': set base to one of"),
        ("cohere", {"cohere": "rerank-v3.5"}, "must be a table"),
        (
            "cohere",
            {"cohere": {"max_documents": "ten"}},
            r"\[profiles.cohere\]: max_documents must be a whole number ≥ 0 \(0: no limit\), "
            "got 'ten'",
        ),
        ("cohere", {"cohere": {"max_documents": -1}}, "max_documents must be .*, got -1"),
        ("cohere", {"cohere": {"max_documents": True}}, "max_documents must be .*, got True"),
        ("cohere", {"cohere": {"key_env": ["1KEY"]}}, r"environment variable name.*got \['1KEY'\]"),
        ("cohere", {"cohere": {"key_env": 7}}, "key_env must be an environment variable name"),
        ("cohere", {"cohere": {"instruction_mode": "often"}}, "must be one of field, query"),
        ("cohere", {"cohere": {"instruction_mode": "field"}}, "needs an instruction_field"),
        ("cohere", {"cohere": {"send_model": "maybe"}}, "send_model must be true or false"),
        ("cohere", {"cohere": {"base_url": ""}}, "base_url must be an http:// or https:// URL"),
        ("cohere", {"cohere": {"base_url": "gpu:8000"}}, "got 'gpu:8000'"),
        ("cohere", {"cohere": {"tokenizer": "gpt"}}, "must be one of qwen3, or empty"),
        ("cohere", {"cohere": {"extra_fields": "x"}}, "extra_fields must be a table, got 'x'"),
        ("cohere", {"cohere": {"extra_fields": {"top_n": 3}}}, "extra_fields may not set 'top_n'"),
        ("tei", {"tei": {"extra_fields": {"texts": []}}}, "extra_fields may not set 'texts'"),
        (
            "dashscope",
            {"dashscope": {"extra_fields": {"instruct": "x"}}},
            "may not set 'instruct'",
        ),
    ],
)
def test_config_errors_name_the_problem(name: str, config: dict[str, Any], message: str) -> None:
    config = {"lab": {"base": "vllm"}, **config}
    with pytest.raises(UsageError, match=message):
        resolve_profile(name, config)


def test_unset_optional_fields_with_an_empty_string() -> None:
    config = {"vllm": {"instruction_field": "", "instruction_mode": "query", "tokenizer": ""}}
    profile = resolve_profile("vllm", config)
    assert (profile.instruction_field, profile.tokenizer) == (None, None)


def test_every_profile_field_but_its_name_can_be_configured() -> None:
    names = [f.name for f in dataclasses.fields(Profile) if f.name != "name"]
    with pytest.raises(UsageError) as error:
        resolve_profile("cohere", {"cohere": {"name": "other"}})
    assert str(error.value).endswith("(known: base, " + ", ".join(names) + ")")


# ---------------------------------------------------------------------------------------------
# rerank profiles


def test_list_profiles_says_which_variable_is_set_never_the_key() -> None:
    env = {"GR_KEY": "gr-secret-123", "VLLM_API_KEY": "", "CO_API_KEY": "co-secret-456"}
    config = {"vllm": {"max_documents": 8}, "lab": {"base": "infinity", "key_env": ["LAB_KEY"]}}
    rows = {row.name: row for row in list_profiles(env, config)}
    assert list(rows) == [*BUILTIN, "lab"]
    assert rows["gigarouter"].key_set == "GR_KEY"
    assert rows["gigarouter"].default
    assert not any(row.default for name, row in rows.items() if name != "gigarouter")
    assert rows["cohere"].key_set == "CO_API_KEY"
    assert rows["vllm"].key_set is None  # set but empty
    assert rows["vllm"].origin == "built-in, changed in config"
    assert rows["jina"].origin == "built-in"
    assert rows["lab"].origin == "config (from infinity)"
    assert rows["lab"].key_env == ("LAB_KEY",)
    assert rows["dashscope"].url.endswith("/compatible-api/v1/reranks")
    shown = repr(rows)
    assert "secret" not in shown
