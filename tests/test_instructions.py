"""Task presets and the four ways an instruction reaches the model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.errors import UsageError
from rerank_cli.providers import instructions
from rerank_cli.providers.instructions import (
    DEFAULT_INSTRUCTION,
    DESCRIPTIONS,
    TASKS,
    deliver,
    document_affixes,
    task_instruction,
    task_rows,
)

# Copied by hand from /work/shared/reference/providers.md ("Qwen3-Reranker prompt", from the
# model card) and issue 5; the module's constants must equal them character for character.
MODEL_CARD_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
MODEL_CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
MODEL_CARD_DEFAULT = "Given a web search query, retrieve relevant passages that answer the query"

INSTRUCTION = "Given a code search query, retrieve code snippets or files that answer it"
QUERY = "parse TOML in python"
TEXTS = ["import tomllib\ntomllib.loads(s)", "def f(): pass"]


def test_prompt_constants_are_the_model_cards() -> None:
    assert instructions.TEMPLATE_PREFIX == MODEL_CARD_PREFIX
    assert instructions.TEMPLATE_SUFFIX == MODEL_CARD_SUFFIX
    assert DEFAULT_INSTRUCTION == MODEL_CARD_DEFAULT
    assert instructions.DOCUMENT_PREFIX == "<Document>: "


def test_query_mode_wraps_the_query_exactly() -> None:
    query, texts, extra = deliver("query", INSTRUCTION, QUERY, TEXTS, "instruction")
    assert query == (
        "<Instruct>: Given a code search query, retrieve code snippets or files that answer it\n"
        "<Query>: parse TOML in python"
    )
    assert texts is TEXTS
    assert extra == {}


def test_template_mode_builds_the_whole_prompt_exactly() -> None:
    query, texts, extra = deliver("template", INSTRUCTION, QUERY, TEXTS, None)
    assert query == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
        'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
        "<|im_end|>\n<|im_start|>user\n<Instruct>: Given a code search query, retrieve code "
        "snippets or files that answer it\n<Query>: parse TOML in python\n"
    )
    assert texts == [
        "<Document>: import tomllib\ntomllib.loads(s)<|im_end|>\n<|im_start|>assistant\n"
        "<think>\n\n</think>\n\n",
        "<Document>: def f(): pass<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    ]
    assert extra == {}


@settings(max_examples=100, deadline=None)
@given(instruction=st.text(min_size=1), query=st.text(), document=st.text())
def test_template_halves_join_into_the_model_card_prompt(
    instruction: str, query: str, document: str
) -> None:
    """Invariant: query half + document half = prefix + body + suffix, as the model card has it
    (format_instruction: "<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}")."""
    query_half, (document_half,), _ = deliver("template", instruction, query, [document], None)
    body = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
    assert query_half + document_half == MODEL_CARD_PREFIX + body + MODEL_CARD_SUFFIX
    prefix, suffix = document_affixes("template")
    assert document_half == prefix + document + suffix


def test_template_mode_without_instruction_uses_the_model_default() -> None:
    for missing in (None, ""):
        query, _, _ = deliver("template", missing, QUERY, TEXTS, None)
        assert f"<Instruct>: {MODEL_CARD_DEFAULT}\n<Query>: {QUERY}\n" in query


@pytest.mark.parametrize("field_name", ["instruction", "instruct"])
def test_field_mode_adds_the_named_field_only(field_name: str) -> None:
    query, texts, extra = deliver("field", INSTRUCTION, QUERY, TEXTS, field_name)
    assert (query, texts, extra) == (QUERY, TEXTS, {field_name: INSTRUCTION})
    assert texts is TEXTS


def test_none_mode_leaves_everything_untouched() -> None:
    query, texts, extra = deliver("none", INSTRUCTION, QUERY, TEXTS, "instruction")
    assert (query, extra) == (QUERY, {})
    assert texts is TEXTS


@pytest.mark.parametrize("mode", ["field", "query", "none"])
@pytest.mark.parametrize("missing", [None, ""])
def test_no_instruction_changes_nothing_outside_template_mode(
    mode: str, missing: str | None
) -> None:
    """The server's template then applies the model's own default: nothing to add."""
    assert deliver(mode, missing, QUERY, TEXTS, None) == (QUERY, TEXTS, {})


def test_field_mode_needs_a_field() -> None:
    with pytest.raises(UsageError, match=r"no instruction field.*query or template"):
        deliver("field", INSTRUCTION, QUERY, TEXTS, None)


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown instruction mode 'prompt'.*field, query"):
        deliver("prompt", INSTRUCTION, QUERY, TEXTS, None)
    with pytest.raises(UsageError):
        document_affixes("prompt")


@pytest.mark.parametrize("mode", ["field", "query", "none"])
def test_only_template_mode_wraps_documents(mode: str) -> None:
    assert document_affixes(mode) == ("", "")


def test_presets() -> None:
    assert {"web", "code", "qa", "docs", "logs", "dedup"} <= set(TASKS)
    assert TASKS["web"] == MODEL_CARD_DEFAULT
    assert TASKS["code"] == INSTRUCTION
    assert set(DESCRIPTIONS) == set(TASKS)
    for name, instruction in TASKS.items():
        # One line in the model card's style: "Given …, retrieve …", no full stop at the end.
        assert "\n" not in instruction and not instruction.endswith(".")
        assert instruction.startswith("Given ") and "retrieve" in instruction
        assert DESCRIPTIONS[name] and "\n" not in DESCRIPTIONS[name]
    assert len(set(TASKS.values())) == len(TASKS)


def test_task_lookup() -> None:
    assert task_instruction("qa") == TASKS["qa"]
    with pytest.raises(UsageError, match=r"unknown task 'poetry'.*web, code, qa, docs, logs"):
        task_instruction("poetry")
    rows = task_rows()
    assert [row[0] for row in rows] == list(TASKS)
    assert rows[0] == ("web", DESCRIPTIONS["web"], MODEL_CARD_DEFAULT)
