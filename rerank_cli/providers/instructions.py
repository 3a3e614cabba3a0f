"""Task instructions for instruction-aware rerankers (Qwen3-Reranker), and the ways to deliver one.

A task instruction tells the model what "relevant" means ("retrieve code snippets that answer
it"); the Qwen3 model card reports 1–5 % better rankings with one that fits the task. How it
reaches the model depends on the server:

- ``field``: a request field (``instruction`` for vLLM, llama.cpp, SiliconFlow; ``instruct`` for
  DashScope) that the server puts into the model's prompt template.
- ``query``: no such field (gigarouter's schema documents none): the query itself carries it, as
  ``<Instruct>: {instruction}\\n<Query>: {query}``. A server that applies the template puts its
  own default instruction in front of that, which the model tolerates; it is the best we can do.
- ``template``: the whole Qwen3-Reranker prompt built here, for raw score servers that apply no
  template (vLLM serving the model as a plain sequence classifier).
- ``none``: the instruction is not sent (models that take none).

"No instruction" (``None`` or ``""``) changes nothing in ``field`` and ``query`` mode: the server's
template then uses the model's own default. In ``template`` mode we are the template, so the model
card's default instruction is used, as the model card does.
"""

from __future__ import annotations

from collections.abc import Sequence

from rerank_cli.errors import UsageError
from rerank_cli.providers.tokens import (
    QWEN3_DEFAULT_INSTRUCTION,
    QWEN3_RERANKER_PREFIX,
    QWEN3_RERANKER_SUFFIX,
)

MODES = ("field", "query", "template", "none")

DEFAULT_INSTRUCTION = QWEN3_DEFAULT_INSTRUCTION
# The Qwen3-Reranker prompt, from its model card: system turn, then the user turn with
# "<Instruct>: …\n<Query>: …\n<Document>: …", then an empty thinking block for the answer.
TEMPLATE_PREFIX = QWEN3_RERANKER_PREFIX
TEMPLATE_SUFFIX = QWEN3_RERANKER_SUFFIX
DOCUMENT_PREFIX = "<Document>: "

# Presets in the Qwen3 style ("Given a …, retrieve … that …"): one sentence, no final full stop,
# naming what the query is and what counts as a match.
TASKS: dict[str, str] = {
    "web": DEFAULT_INSTRUCTION,
    "code": "Given a code search query, retrieve code snippets or files that answer it",
    "qa": "Given a question, retrieve passages that contain the answer to the question",
    "docs": (
        "Given a question about a software tool or library, retrieve documentation passages "
        "that explain how to do it"
    ),
    "logs": (
        "Given a description of an event or error, retrieve the log lines that record it or "
        "its cause"
    ),
    "dedup": (
        "Given a text, retrieve texts that say the same thing, including paraphrases and "
        "near-duplicates"
    ),
}

DESCRIPTIONS: dict[str, str] = {
    "web": "web-style search queries (the model's default instruction)",
    "code": "code search: functions, snippets, files",
    "qa": "questions, answered by a passage",
    "docs": "how-to questions, answered by documentation",
    "logs": "events or errors, found in log lines",
    "dedup": "paraphrases and near-duplicates of the query text",
}


def task_instruction(name: str) -> str:
    """The instruction of preset ``name``; :class:`UsageError` naming the presets otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(TASKS)
        raise UsageError(f"unknown task {name!r} (known: {known}; see `rerank tasks`)") from None


def task_rows() -> list[tuple[str, str, str]]:
    """``(name, description, instruction)`` for each preset, for ``rerank tasks``."""
    return [(name, DESCRIPTIONS[name], instruction) for name, instruction in TASKS.items()]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown instruction mode {mode!r} (known: {', '.join(MODES)})")
    return mode


def instructed_query(instruction: str, query: str) -> str:
    """The query with the instruction inside it (``query`` mode)."""
    return f"<Instruct>: {instruction}\n<Query>: {query}"


def template_query(instruction: str | None, query: str) -> str:
    """The query half of the full Qwen3-Reranker prompt (``template`` mode)."""
    return f"{TEMPLATE_PREFIX}{instructed_query(instruction or DEFAULT_INSTRUCTION, query)}\n"


def template_document(text: str) -> str:
    """The document half of the full Qwen3-Reranker prompt (``template`` mode)."""
    return f"{DOCUMENT_PREFIX}{text}{TEMPLATE_SUFFIX}"


def document_affixes(mode: str) -> tuple[str, str]:
    """What ``mode`` puts before and after every document text, for counting its tokens.

    ``("", "")`` but in ``template`` mode. For exact Qwen3 counts, count ``"<Document>:"`` and the
    suffix on their own, and the document with ``QwenTokenizer(lead=" ")``: the space before the
    document merges with its first word in the BPE, and the suffix starts with a special token.
    """
    if check_mode(mode) == "template":
        return DOCUMENT_PREFIX, TEMPLATE_SUFFIX
    return "", ""


def deliver(
    mode: str,
    instruction: str | None,
    query: str,
    texts: Sequence[str],
    field_name: str | None,
) -> tuple[str, Sequence[str], dict[str, str]]:
    """``(query, texts, extra request fields)`` with ``instruction`` delivered the ``mode`` way.

    ``texts`` comes back as the same object unless ``mode`` is ``template``; ``field_name`` is
    the profile's instruction field, needed by ``field`` mode only.
    """
    check_mode(mode)
    if mode == "template":
        return template_query(instruction, query), [template_document(t) for t in texts], {}
    if not instruction or mode == "none":
        return query, texts, {}
    if mode == "query":
        return instructed_query(instruction, query), texts, {}
    if not field_name:
        raise UsageError(
            "this API has no instruction field: use --instruction-mode query or template"
        )
    return query, texts, {field_name: instruction}


def template_text(mode: str) -> str | None:
    """The prompt template ``mode`` builds here, with ``{instruction}``, ``{query}`` and
    ``{document}`` for what fills it: the whole Qwen3-Reranker prompt in ``template`` mode, the
    instructed query in ``query`` mode; ``None`` when the server's template is used (``field``,
    ``none``). Its hash tells two runs' prompts apart (``rerank batch --stats``)."""
    if check_mode(mode) == "template":
        return template_query("{instruction}", "{query}") + template_document("{document}")
    if mode == "query":
        return instructed_query("{instruction}", "{query}")
    return None
