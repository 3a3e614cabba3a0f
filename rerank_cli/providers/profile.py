"""Provider profiles: where each rerank API lives, what its request looks like, and its limits.

Every provider answers in a shape :func:`rerank_cli.protocol.parse_response` reads (``results``,
``data`` or a bare list, each item an ``index`` and a ``relevance_score`` or ``score``), so a
profile only describes the request side: URL, key variables, field names, fixed extra fields, and
the limits batching and long-document handling must respect. Where each fact comes from is in
tests/data/providers/ (README.md and each file's ``_source``); a limit nobody documents is None.

Users may change any field of a built-in profile, or define a new one from a built-in, in
``[profiles.NAME]`` sections of the config file (:func:`resolve_profile`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from rerank_cli.errors import UsageError
from rerank_cli.providers.instructions import MODES
from rerank_cli.providers.tokens import QWEN3_RERANKER_CONTEXT, is_qwen3
from rerank_cli.settings import values
from rerank_cli.settings.values import Parser

DEFAULT_PROFILE = "gigarouter"
# Qwen3-Reranker's context: query, document and prompt template together.
QWEN3_CONTEXT = QWEN3_RERANKER_CONTEXT
TOKENIZERS = ("qwen3",)
# Fields that would change which documents get a score: every request must return them all,
# since the scores of all batches are merged into one global ranking (see protocol.build_body).
RESERVED_FIELDS = frozenset({"model", "query", "top_n", "top_k", "return_documents"})


@dataclass(frozen=True)
class Profile:
    name: str
    base_url: str
    path: str = "/rerank"  # appended to base_url
    key_env: tuple[str, ...] = ()  # environment variables holding the key; the first set wins
    key_required: bool = True  # False for local servers, which may run without a key
    model: str = ""
    documents_field: str = "documents"
    send_model: bool = True
    instruction_field: str | None = None
    instruction_mode: str = "none"  # the default for --instruction-mode: one of MODES
    # Fixed fields sent with every request (e.g. TEI "truncate": false).
    extra_fields: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # The request field that carries our per-document token limit (Cohere: max_tokens_per_doc),
    # so that the server's own truncation never cuts a document we sent.
    doc_limit_field: str | None = None
    max_documents: int | None = None  # per request
    max_tokens_per_doc: int | None = None  # tokens of one document alone
    context_tokens: int | None = None  # tokens of query + document (+ template) together
    max_tokens_per_request: int | None = None
    tokenizer: str | None = None  # "qwen3": the default model counts with the Qwen3 tokenizer
    docs_url: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_fields", MappingProxyType(dict(self.extra_fields)))

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.path


BUILTIN: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="gigarouter",
            base_url="https://gigarouter.ai/v1",
            key_env=("GR_KEY", "RERANK_API_KEY"),
            model="Qwen/Qwen3-Reranker-0.6B",
            instruction_mode="query",
            context_tokens=QWEN3_CONTEXT,
            tokenizer="qwen3",
            docs_url="https://gigarouter.ai",
            notes=(
                "The rerank schema documents no instruction field, top_n or return_documents: "
                "instructions travel in the query. Per-request document and token limits are "
                "not documented."
            ),
        ),
        Profile(
            name="cohere",
            base_url="https://api.cohere.com/v2",
            key_env=("CO_API_KEY", "COHERE_API_KEY"),
            model="rerank-v3.5",
            doc_limit_field="max_tokens_per_doc",
            max_documents=1000,
            max_tokens_per_doc=4096,
            docs_url="https://docs.cohere.com/reference/rerank",
            notes=(
                "Truncates documents to max_tokens_per_doc (default 4096) without an error, so "
                "the limit we chunk to is sent with every request. At most 1,000 documents per "
                "request is Cohere's recommendation. Scores are 0..1 but not linear."
            ),
        ),
        Profile(
            name="jina",
            base_url="https://api.jina.ai/v1",
            key_env=("JINA_API_KEY",),
            model="jina-reranker-v2-base-multilingual",
            docs_url="https://jina.ai/reranker/",
            notes="Document count and token limits per request are not documented here.",
        ),
        Profile(
            name="voyage",
            base_url="https://api.voyageai.com/v1",
            key_env=("VOYAGE_API_KEY",),
            model="rerank-2.5",
            instruction_mode="query",
            extra_fields={"truncation": False},
            max_documents=1000,
            context_tokens=32_000,
            max_tokens_per_request=600_000,
            docs_url="https://docs.voyageai.com/reference/reranker-api",
            notes=(
                "top_n is called top_k; responses list data[], not results[]. truncation=false "
                "makes an over-long query+document an error instead of a silent cut. rerank-2.5 "
                "follows instructions written into the query. Limits are rerank-2.5's: 32,000 "
                "tokens per query+document, 600K per request (query tokens × documents + all "
                "document tokens)."
            ),
        ),
        Profile(
            name="vllm",
            base_url="http://localhost:8000/v1",
            key_env=("VLLM_API_KEY",),
            key_required=False,
            model="Qwen/Qwen3-Reranker-0.6B",
            instruction_field="instruction",
            instruction_mode="field",
            context_tokens=QWEN3_CONTEXT,
            tokenizer="qwen3",
            docs_url="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
            notes=(
                "Also serves /rerank and /v2/rerank. Recent versions take an 'instruction' "
                "field into the chat template; older ones ignore unknown fields with only a "
                "server-side warning. A server started without the Qwen3 template needs "
                "--instruction-mode template. An over-long pair is a 400 (we send no "
                "truncate_prompt_tokens). context_tokens is the model's, not the server's "
                "--max-model-len."
            ),
        ),
        Profile(
            name="tei",
            base_url="http://localhost:8080",
            key_env=("TEI_API_KEY",),
            key_required=False,
            model="",
            documents_field="texts",
            send_model=False,
            extra_fields={"truncate": False, "raw_scores": False},
            max_documents=32,
            docs_url="https://huggingface.github.io/text-embeddings-inference/",
            notes=(
                "Hugging Face text-embeddings-inference: serves one model and takes no 'model'; "
                "documents go in 'texts'; answers a bare list. truncate=false makes an "
                "over-long input a 413 instead of a silent cut (the server may be started "
                "with --auto-truncate); raw_scores=false asks for sigmoid scores. 32 is the "
                "default --max-client-batch-size. The token limit is the model's (often 512). "
                "TEI_API_KEY is our name for the server's --api-key."
            ),
        ),
        Profile(
            name="infinity",
            base_url="http://localhost:7997",
            key_env=("INFINITY_API_KEY",),
            key_required=False,
            model="mixedbread-ai/mxbai-rerank-xsmall-v1",
            max_documents=2048,
            docs_url="https://michaelfeil.github.io/infinity/",
            notes=(
                "infinity-emb; with --url-prefix /v1 the base URL ends in /v1 (/health stays at "
                "the root). 'document' in results is a string or null. The token limit is the "
                "served model's and is not reported."
            ),
        ),
        Profile(
            name="siliconflow",
            base_url="https://api.siliconflow.com/v1",
            key_env=("SILICONFLOW_API_KEY",),
            model="Qwen/Qwen3-Reranker-0.6B",
            instruction_field="instruction",
            instruction_mode="field",
            context_tokens=QWEN3_CONTEXT,
            tokenizer="qwen3",
            docs_url="https://docs.siliconflow.com/en/api-reference/rerank/create-rerank",
            notes=(
                "https://api.siliconflow.cn/v1 in mainland China. 'instruction' is documented "
                "for the Qwen3 rerankers only. Per-request limits are not documented; "
                "context_tokens is the model's."
            ),
        ),
        Profile(
            name="dashscope",
            base_url="https://dashscope.aliyuncs.com/compatible-api/v1",
            path="/reranks",
            key_env=("DASHSCOPE_API_KEY",),
            model="qwen3-rerank",
            instruction_field="instruct",
            instruction_mode="field",
            max_documents=500,
            max_tokens_per_doc=4000,
            max_tokens_per_request=120_000,
            docs_url="https://www.alibabacloud.com/help/en/model-studio/text-rerank-api",
            notes=(
                "Alibaba Cloud Model Studio, OpenAI-compatible endpoint (plural /reranks; the "
                "native API nests input/parameters and is not this one). Beijing region; other "
                "regions use their own host. Over 4,000 tokens the query or a document is "
                "truncated, not rejected. The tokenizer is not documented."
            ),
        ),
        Profile(
            name="together",
            base_url="https://api.together.xyz/v1",
            key_env=("TOGETHER_API_KEY",),
            model="Salesforce/Llama-Rank-V1",
            context_tokens=8000,
            docs_url="https://docs.together.ai/reference/rerank-1",
            notes=(
                "Cohere-compatible. 8,000 tokens is LlamaRank's context per document; the "
                "document count per request is not documented."
            ),
        ),
        Profile(
            name="llamacpp",
            base_url="http://127.0.0.1:8080/v1",
            key_env=("LLAMA_API_KEY",),
            key_required=False,
            model="ggml-org/Qwen3-Reranker-0.6B-Q8_0-GGUF",
            instruction_mode="query",
            context_tokens=512,
            tokenizer="qwen3",
            docs_url="https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
            notes=(
                "llama.cpp's llama-server started with --rerank (or --reranking) and a reranker "
                "GGUF serves POST /v1/rerank (also /rerank, /reranking, /v1/reranking). It "
                "serves one model and ignores 'model'; without top_n it returns every score. "
                "No instruction field: the Qwen3 GGUF's rerank template holds the default "
                "instruction, and ours travels in the query. For Qwen3-Reranker use the "
                "ggml-org conversion (others are reported to give broken scores; rerank doctor "
                "tells). A query with its document and template must fit the physical batch "
                "(--ubatch-size, default 512 tokens), else the server answers HTTP 500 'input is "
                "too large to process': context_tokens 512 matches that default — start the "
                "server with -b N -ub N (and -c) and set context_tokens = N in "
                "[profiles.llamacpp]. LLAMA_API_KEY is the server's own variable for --api-key."
            ),
        ),
        Profile(
            name="novita",
            base_url="https://api.novita.ai/openai/v1",
            key_env=("NOVITA_API_KEY",),
            model="baai/bge-reranker-v2-m3",
            docs_url="https://novita.ai/docs/api-reference/model-apis-llm-create-rerank",
            notes="Document count and token limits are not documented on the API page.",
        ),
    )
}


def find_key(profile: Profile, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(variable, key)`` from the first of the profile's variables that is set."""
    for variable in profile.key_env:
        if env.get(variable):
            return variable, env[variable]
    return None


def tokenizer_family(profile: Profile, model: str) -> str | None:
    """``"qwen3"`` when ``model`` counts with the Qwen3 tokenizer, else None (estimate).

    The profile's hint covers its own default model only: another model on the same server may
    tokenize differently, and then only its name can tell."""
    if profile.tokenizer and model == profile.model:
        return profile.tokenizer
    return "qwen3" if is_qwen3(model) else None


# ---------------------------------------------------------------------------------------------
# [profiles.NAME] sections of the config file

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _optional_text(value: Any) -> str | None:
    return values.any_text(value) or None  # "" unsets


def _path(value: Any) -> str:
    text = values.any_text(value)
    return text if not text or text.startswith("/") else "/" + text


_whole = values.whole(0)


def _limit(value: Any) -> int | None:
    try:
        return _whole(value) or None
    except values.Invalid:
        raise values.Invalid("a whole number ≥ 0 (0: no limit)") from None


def _key_env(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, list)
        or not all(isinstance(name, str) for name in names)
        or not all(_ENV_NAME.match(name) for name in names)
    ):
        raise values.Invalid("an environment variable name (A-Z, 0-9, _) or a list of them")
    return tuple(names)


def _extra_fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise values.Invalid("a table")
    return dict(value)


# How each field of a [profiles.NAME] section is read: the same parsers as the settings'.
FIELD_PARSERS: dict[str, Parser] = {
    "base_url": values.url,
    "path": _path,
    "key_env": _key_env,
    "key_required": values.boolean,
    "model": values.any_text,
    "documents_field": values.text,
    "send_model": values.boolean,
    "instruction_field": _optional_text,
    "instruction_mode": values.choice(MODES),
    "extra_fields": _extra_fields,
    "doc_limit_field": _optional_text,
    "max_documents": _limit,
    "max_tokens_per_doc": _limit,
    "context_tokens": _limit,
    "max_tokens_per_request": _limit,
    "tokenizer": values.choice(TOKENIZERS, empty=True),
    "docs_url": values.any_text,
    "notes": values.any_text,
}


def known_profiles(config_profiles: Mapping[str, Any]) -> list[str]:
    return [*BUILTIN, *(name for name in config_profiles if name not in BUILTIN)]


def resolve_profile(name: str, config_profiles: Mapping[str, Any]) -> Profile:
    """Profile ``name``: a built-in one with its ``[profiles.NAME]`` overrides, or a new one
    defined in the config file from a built-in (``base = "vllm"``)."""
    section = config_profiles.get(name)
    where = f"[profiles.{name}]"
    if section is not None and not isinstance(section, Mapping):
        raise UsageError(f"{where} in the config file must be a table")
    overrides = dict(section or {})
    base_name = overrides.pop("base", None)
    if name in BUILTIN:
        if base_name is not None:
            raise UsageError(f"{where}: 'base' is for new profiles; {name!r} is a built-in one")
        base = BUILTIN[name]
    elif section is not None:
        if base_name not in BUILTIN:
            choices = ", ".join(BUILTIN)
            got = "no base" if base_name is None else f"base = {base_name!r}"
            raise UsageError(f"{where} has {got}: set base to one of {choices}")
        base = BUILTIN[base_name]
    else:
        known = ", ".join(known_profiles(config_profiles))
        raise UsageError(f"unknown profile {name!r} (known: {known})")

    changed: dict[str, Any] = {}
    for key, value in overrides.items():
        parse = FIELD_PARSERS.get(key)
        if parse is None:
            known = ", ".join(["base", *FIELD_PARSERS])
            raise UsageError(f"{where}: unknown field {key!r} (known: {known})")
        try:
            changed[key] = parse(value)
        except values.Invalid as error:
            raise UsageError(f"{where}: {values.problem(key, str(error), value)}") from None
    profile = replace(base, name=name, **changed)
    _check(profile, base, changed, where)
    return profile


def _check(profile: Profile, base: Profile, values: Mapping[str, Any], where: str) -> None:
    if profile.instruction_mode == "field" and not profile.instruction_field:
        raise UsageError(f"{where}: instruction_mode = 'field' needs an instruction_field")
    taken = RESERVED_FIELDS | {profile.documents_field}
    taken |= {f for f in (profile.instruction_field, profile.doc_limit_field) if f}
    for key in profile.extra_fields:
        if key in taken:
            raise UsageError(f"{where}: extra_fields may not set {key!r}")
    # A key meant for one hosted service must not follow a base_url to another host unasked.
    moved = urlsplit(profile.base_url).hostname != urlsplit(base.base_url).hostname
    if moved and base.key_required and "key_env" not in values and profile.key_env:
        variables = ", ".join(f"${v}" for v in profile.key_env)
        raise UsageError(
            f"{where}: base_url leaves {urlsplit(base.base_url).hostname}, but the key would "
            f"still come from {variables}, meant for {base.name!r}: set key_env (to keep it, "
            f"key_env = {list(profile.key_env)!r})"
        )
