"""Long documents by exact tokens, through the real CLI against a server that rejects (400) any
document over its limit, counted exactly as the Qwen3-Reranker prompt holds it: --max-tokens,
--long chunk|truncate|error, --chunk-overlap, the default limit, `rerank files`, and the
estimate for models without a known tokenizer."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_cli.providers.tokens import QWEN3_DOCUMENT_LEAD, QwenTokenizer, estimate_tokens
from tests.conftest import CliResult, RunCli
from tests.server import RerankServer, score

QUERY = "brown fox jumps"
PASSAGE = "the quick brown fox jumps over the lazy dog"
IN_PROMPT = QwenTokenizer(lead=QWEN3_DOCUMENT_LEAD)  # how the server counts a document
count = IN_PROMPT.count


def filler(word: str, n: int, start: int = 0) -> str:
    """Words that are all different, so each window is found at one place only."""
    return " ".join(f"{word}{k}" for k in range(start, start + n))


def sent_documents(server: RerankServer) -> list[str]:
    return [d for r in server.requests if r.method == "POST" for d in r.documents]


def positions(document: str, windows: list[str]) -> list[tuple[int, int]]:
    """Where each window (in the order sent) sits in ``document``."""
    spans, at = [], 0
    for window in windows:
        start = document.find(window, at)
        assert start >= 0, window[:60]
        spans.append((start, start + len(window)))
        at = start + 1
    return spans


def run(api_cli: RunCli, *args: str, stdin: bytes = b"") -> CliResult:
    return api_cli(QUERY, *args, "-o", "jsonl", "--no-cache", "--batch-size", "1000", stdin=stdin)


def by_text(result: CliResult) -> dict[str, dict[str, Any]]:
    return {record["text"]: record for record in result.records()}


# ---------------------------------------------------------------------------------------------
# chunk (the default)


def test_every_window_fits_and_the_best_window_wins(api_cli: RunCli, server: RerankServer) -> None:
    limit = 100
    server.max_document_tokens = limit
    middle = f"{filler('lorem', 200)} {PASSAGE} {filler('ipsum', 200)}"
    end = f"{filler('dolor', 300)} {PASSAGE}."
    short = "a short document about a fox"
    result = run(api_cli, middle, short, end, "--max-tokens", str(limit))
    assert result.exit_code == 0, result.stderr
    sent = sent_documents(server)
    assert count(middle) > 10 * limit and count(end) > 10 * limit
    assert all(count(text) <= limit for text in sent)
    assert max(count(text) for text in sent) >= limit - 2  # windows are full, not timid
    records = by_text(result)
    assert "chunk" not in records[short]
    assert records[short]["score"] == score(QUERY, short)
    for document in (middle, end):
        record = records[document]
        chunk = record["chunk"]
        window = document[chunk["start_char"] : chunk["end_char"]]
        assert PASSAGE in window
        assert count(window) <= limit
        windows = [text for text in sent if text in document]
        assert window in windows
        assert record["score"] == score(QUERY, window) == max(score(QUERY, w) for w in windows)
        assert chunk["index"] == windows.index(window)
    assert records[end]["chunk"]["end_char"] == len(end)  # the last window reaches the end


def test_the_server_does_reject_a_document_over_its_limit(
    api_cli: RunCli, server: RerankServer
) -> None:
    """The control for the tests here: a window larger than the server's limit is refused."""
    server.max_document_tokens = 100
    result = run(api_cli, filler("lorem", 300), "--max-tokens", "150")
    assert result.exit_code == 3
    assert "over 100" in result.stderr


@pytest.mark.parametrize("overlap", [0, 1, 20, 40])
def test_consecutive_windows_overlap_by_the_tokens_asked(
    api_cli: RunCli, server: RerankServer, overlap: int
) -> None:
    limit = 80
    server.max_document_tokens = limit
    document = filler("lorem", 400)
    args = ("--max-tokens", str(limit), "--chunk-overlap", str(overlap))
    assert run(api_cli, document, *args).exit_code == 0
    windows = sent_documents(server)
    spans = positions(document, windows)
    assert spans[0][0] == 0 and spans[-1][1] == len(document)
    for (start, end), (next_start, _) in pairwise(spans):
        assert start < next_start <= end  # no gap, always progress
        shared = document[next_start:end]
        assert QwenTokenizer().count(shared) == overlap  # plain English: exactly
    if overlap == 0:
        assert "".join(windows) == document


def test_default_overlap_is_64_tokens_or_a_quarter_of_a_small_window(
    api_cli: RunCli, server: RerankServer
) -> None:
    document = filler("lorem", 500)
    for limit, overlap in ((400, 64), (40, 10)):
        server.requests.clear()
        assert run(api_cli, document, "--max-tokens", str(limit)).exit_code == 0
        spans = positions(document, sent_documents(server))
        shared = [document[b[0] : a[1]] for a, b in pairwise(spans)]
        assert {QwenTokenizer().count(text) for text in shared} == {overlap}


def test_an_overlap_as_large_as_a_window_is_a_usage_error(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = run(api_cli, filler("lorem", 300), "--max-tokens", "50", "--chunk-overlap", "50")
    assert result.exit_code == 2
    assert "--chunk-overlap 50" in result.stderr
    assert sent_documents(server) == []


def test_an_overlap_as_large_as_a_window_is_refused_even_when_every_document_is_short(
    api_cli: RunCli, server: RerankServer
) -> None:
    # Far below the limit even at the worst bytes per character: no document needs a window.
    result = run(api_cli, "short", "--max-tokens", "1000", "--chunk-overlap", "1000")
    assert result.exit_code == 2
    assert "--chunk-overlap 1000" in result.stderr
    assert sent_documents(server) == []


# ---------------------------------------------------------------------------------------------
# truncate, error


def test_truncate_sends_the_first_tokens_and_warns_once(
    api_cli: RunCli, server: RerankServer
) -> None:
    limit = 60
    server.max_document_tokens = limit
    longs = [
        filler("lorem", 200),
        "长文档的重排序需要精确的分词计数，" * 30,
        "🙂👍🏽👨‍👩‍👧 " * 60,
    ]
    short = "brown fox"
    result = run(
        api_cli,
        longs[0],
        short,
        longs[1],
        longs[2],
        "--max-tokens",
        str(limit),
        "--long",
        "truncate",
    )
    assert result.exit_code == 0, result.stderr
    sent = sent_documents(server)
    assert len(sent) == 4 and short in sent
    for document in longs:
        [head] = [text for text in sent if text != short and document.startswith(text)]
        assert limit - 4 <= count(head) <= limit
        # The output shows the document as read, and its chunk the part that was scored.
        chunk = by_text(result)[document]["chunk"]
        assert (chunk["start_char"], document[: chunk["end_char"]]) == (0, head)
    assert result.stderr.count("truncated") == 1
    assert f"3 documents truncated to {limit} tokens" in result.stderr


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_error_names_the_first_offending_document_and_sends_nothing(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, via: str
) -> None:
    lines = ["short one", "short two", filler("lorem", 100), "short four", filler("ipsum", 200)]
    data = "\n".join(lines).encode()
    if via == "file":
        path = tmp_path / "docs.txt"
        path.write_bytes(data)
        result = run(api_cli, "-i", str(path), "--max-tokens", "50", "--long", "error")
        where = f"{path}:3"
    else:
        result = run(api_cli, "-i", "-", "--max-tokens", "50", "--long", "error", stdin=data)
        where = "<stdin>:3"
    assert result.exit_code == 2
    assert f"{where}: {count(lines[2]):,} tokens, over the limit of 50" in result.stderr
    assert ":5" not in result.stderr
    assert server.requests == []
    assert result.stdout == b""


def test_error_passes_documents_within_the_limit(api_cli: RunCli, server: RerankServer) -> None:
    server.max_document_tokens = 50
    result = run(api_cli, "a brown fox", "jumps high", "--max-tokens", "50", "--long", "error")
    assert result.exit_code == 0, result.stderr
    assert sorted(sent_documents(server)) == ["a brown fox", "jumps high"]


# ---------------------------------------------------------------------------------------------
# beyond English

# Numbered throughout, so that no two windows are the same text (identical texts are sent once).
MULTILINGUAL = "".join(
    [f"{n}长文档的重排序{n}需要精确的分词计数。{n}模型最多读取{n}三万个词元。" for n in range(6)]
    + [" 狐狸 跳过 懒狗 "]
    + [f"{n} 🙂👍🏽 {n}👨‍👩‍👧‍👦🇯🇵 {n} ✨ " for n in range(12)]
    + [
        f"def rerank_{n}(q{n}: str) -> list[float]:\n\treturn [s{n}(q, d) for d in ds{n}]  # ✓\r\n"
        for n in range(8)
    ]
    + [f"{n} Cafe\u0301 {n} naïve {n} Ünïcödé {n} ﬁ Ω Å " for n in range(10)]
    + [f"{n} Пример {n} текста {n} на русском языке. " for n in range(8)]
)


@pytest.mark.parametrize("limit", [24, 50, 200])
def test_multilingual_windows_fit_and_rebuild_the_document(
    server: RerankServer, api_cli: RunCli, limit: int
) -> None:
    server.max_document_tokens = limit
    query = "狐狸 懒狗"
    result = api_cli(
        query,
        MULTILINGUAL,
        "-o",
        "jsonl",
        "--no-cache",
        "--batch-size",
        "1000",
        "--max-tokens",
        str(limit),
        "--chunk-overlap",
        "0",
    )
    assert result.exit_code == 0, result.stderr
    windows = sent_documents(server)
    assert len(windows) > 1
    assert all(count(window) <= limit for window in windows)
    assert "".join(windows) == MULTILINGUAL  # no character lost, split or changed
    # With the default overlap, some window holds the whole passage, and it wins.
    server.requests.clear()
    result = api_cli(query, MULTILINGUAL, "-o", "jsonl", "--no-cache", "--max-tokens", str(limit))
    assert result.exit_code == 0, result.stderr
    assert all(count(window) <= limit for window in sent_documents(server))
    [record] = result.records()
    chunk = record["chunk"]
    assert "狐狸 跳过 懒狗" in MULTILINGUAL[chunk["start_char"] : chunk["end_char"]]


def test_multilingual_truncation_fits(api_cli: RunCli, server: RerankServer) -> None:
    server.max_document_tokens = 40
    args = ("--max-tokens", "40", "--long", "truncate")
    assert run(api_cli, MULTILINGUAL[500:], *args).exit_code == 0
    [head] = sent_documents(server)
    assert MULTILINGUAL[500:].startswith(head) and 36 <= count(head) <= 40


# ---------------------------------------------------------------------------------------------
# the default limit: Qwen3's 32,768 tokens less the query and the prompt


def exactly(tokens: int, seed: str = "w") -> str:
    """A document of exactly ``tokens`` tokens, counted in the prompt."""
    text = IN_PROMPT.truncate(filler(seed, tokens // 2), tokens - 8)
    while count(text) < tokens:
        text += " a"  # one token each, whatever precedes it
    assert count(text) == tokens
    return text


@pytest.mark.parametrize(
    ("args", "seen_query"),
    [
        pytest.param([], QUERY, id="no instruction"),
        pytest.param(
            ["-I", "Find the fox"], f"<Instruct>: Find the fox\n<Query>: {QUERY}", id="-I"
        ),
        pytest.param(["--task", "qa"], None, id="--task"),
    ],
)
def test_the_default_limit_is_the_context_less_query_and_prompt(
    api_cli: RunCli,
    server: RerankServer,
    args: list[str],
    seen_query: str | None,
) -> None:
    from rerank_cli.providers.instructions import TASKS
    from rerank_cli.providers.tokens import qwen3_document_limit, qwen3_reranker_prompt_tokens

    if seen_query is None:
        seen_query = f"<Instruct>: {TASKS['qa']}\n<Query>: {QUERY}"
    # gigarouter puts the instruction in the query; its template adds the default instruction.
    limit = qwen3_document_limit(seen_query)
    assert 32_600 < limit < 32_768 - 20
    server.max_document_tokens = limit
    fits, over = exactly(limit), exactly(limit + 1, seed="v")
    result = run(api_cli, fits, over, *args, "-v")
    assert result.exit_code == 0, result.stderr
    sent = sent_documents(server)
    assert fits in sent  # exactly at the limit: whole
    windows = [text for text in sent if text != fits]
    assert len(windows) == 2 and all(count(w) <= limit for w in windows)
    assert count(windows[0]) >= limit - 2
    assert f"documents up to {limit:,} tokens" in result.stderr
    assert "chunk" not in by_text(result)[fits] and "chunk" in by_text(result)[over]
    # The whole prompt the model reads, built as its model card builds it, fills its context.
    assert qwen3_reranker_prompt_tokens(seen_query, fits) == 32_768
    assert max(qwen3_reranker_prompt_tokens(seen_query, w) for w in windows) <= 32_768


def test_template_mode_limit_counts_the_instruction_in_the_prompt(
    api_cli: RunCli, server: RerankServer
) -> None:
    from rerank_cli.providers.instructions import TEMPLATE_SUFFIX
    from rerank_cli.providers.tokens import qwen3_document_limit

    instruction = "Given a question about foxes, retrieve passages that answer it"
    limit = qwen3_document_limit(QUERY, instruction)
    over = exactly(limit + 50)
    args = ("-I", instruction, "--instruction-mode", "template", "-v")
    result = run(api_cli, over, *args)
    assert result.exit_code == 0, result.stderr
    assert f"documents up to {limit:,} tokens" in result.stderr
    windows = [
        d.removeprefix("<Document>: ").removesuffix(TEMPLATE_SUFFIX) for d in sent_documents(server)
    ]
    assert len(windows) == 2 and all(count(w) <= limit for w in windows)


# ---------------------------------------------------------------------------------------------
# rerank files


def test_files_windows_inside_line_chunks_report_their_own_lines(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    limit = 60
    server.max_document_tokens = limit
    lines = [f"line {n}: " + filler(f"w{n}x", 6) for n in range(1, 81)]
    lines[24] = f"line 25: {PASSAGE}"  # inside the first 40-line chunk, far from its edges
    (tmp_path / "notes.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "other.txt").write_text("nothing to see here\n", encoding="utf-8")
    result = api_cli(
        "files",
        QUERY,
        str(tmp_path),
        "-o",
        "jsonl",
        "--no-cache",
        "--chunk-lines",
        "40",
        "--overlap",
        "0",
        "--max-tokens",
        str(limit),
    )
    assert result.exit_code == 0, result.stderr
    assert all(count(text) <= limit for text in sent_documents(server))
    best = result.records()[0]
    assert best["path"].endswith("notes.txt")
    text, first, last = best["best"]["text"], best["best"]["start_line"], best["best"]["end_line"]
    assert QUERY in text and first <= 25 <= last
    assert last - first + 1 < 40  # the window's lines, not the whole chunk's
    # Its first line ends the file's line `first`, and its lines are the file's lines.
    assert lines[first - 1].endswith(text.split("\n")[0])
    assert text.rstrip("\n").count("\n") == last - first
    assert text.strip() in "\n".join(lines[first - 1 : last])
    assert best["chunks"] > 2  # two line chunks, each in several windows


# ---------------------------------------------------------------------------------------------
# a model without a known tokenizer


def test_unknown_tokenizer_falls_back_to_the_estimate_and_says_so(
    api_cli: RunCli, server: RerankServer
) -> None:
    model = "some-other-model"
    server.models[model] = ("rerank", 0.001)
    server.max_document_tokens = 80  # the exact count is never above the estimate
    document = filler("lorem", 100) + " Ünïcödé 狐狸 🙂"
    args = ("-m", model, "--max-tokens", "80", "--chunk-overlap", "0")
    result = run(api_cli, document, *args, "-v")
    assert result.exit_code == 0, result.stderr
    assert f"estimate (UTF-8 bytes + 1; no known tokenizer for {model})" in result.stderr
    windows = sent_documents(server)
    assert "".join(windows) == document
    assert all(estimate_tokens(w) <= 80 for w in windows)
    assert max(estimate_tokens(w) for w in windows) >= 76
    quiet = run(api_cli, document, *args)
    assert quiet.exit_code == 0 and "estimate" not in quiet.stderr


def test_the_exact_tokenizer_is_not_reported_as_an_estimate(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = run(api_cli, filler("lorem", 100), "--max-tokens", "80", "-v")
    assert result.exit_code == 0
    assert "counted by Qwen3 byte-level BPE (exact" in result.stderr
    assert "estimate (" not in result.stderr


def test_another_model_on_the_profile_gets_no_borrowed_context(
    api_cli: RunCli, server: RerankServer
) -> None:
    """gigarouter's 32,768-token context is Qwen3's: a cross-encoder served there has its own
    limit, which we do not know, so nothing is windowed by the Qwen3 figure."""
    model = "cross-encoder/ms-marco-MiniLM-L6-v2"
    document = filler("lorem", 9000)  # over 32,768 estimated tokens
    result = run(api_cli, document, "short one", "-m", model, "-v")
    assert result.exit_code == 0, result.stderr
    assert document in sent_documents(server)
    assert "no per-document token limit known" in result.stderr


def test_an_instruction_the_profile_cannot_send_is_warned_about(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = run(api_cli, "a", "b", "--instruction-mode", "none", "-I", "Judge code")
    assert result.exit_code == 0
    assert "-I/--task is ignored" in result.stderr
    assert all("Judge code" not in str(r.body) for r in server.requests)


# ---------------------------------------------------------------------------------------------
# the splitter's invariants, without a server

_TEXT = st.lists(
    st.sampled_from(
        ["lorem ipsum", "狐狸跳过懒狗", "🙂👍🏽", "def f(x):\n\treturn x", "Cafe\u0301", "\n", " "]
    ),
    min_size=20,
    max_size=120,
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, max_tokens=st.integers(12, 80), lines=st.integers(1, 12), data=st.data())
def test_long_line_chunks_become_windows_that_fit_and_point_into_the_file(
    text: str, max_tokens: int, lines: int, data: st.DataObject
) -> None:
    from rerank_cli.core.documents import Document
    from rerank_cli.core.line_chunks import LineChunker, splitter
    from rerank_cli.core.long_documents import Limit, LongDocuments

    overlap = data.draw(st.integers(0, max_tokens // 2))
    long = LongDocuments(Limit(IN_PROMPT, max_tokens), "chunk", overlap)
    split = long.wrap(splitter(LineChunker(lines=lines, overlap=0)))
    document = Document(text=text, raw=text.encode())
    file_lines = text.split("\n")
    units = split(document)
    indices = [chunk.index for chunk, _ in units if chunk is not None]
    assert indices == sorted(set(indices))
    for chunk, unit in units:
        assert chunk is not None
        assert count(unit) <= max_tokens
        assert text[chunk.start_char : chunk.end_char] == unit
        assert chunk.start_line is not None and chunk.end_line is not None
        # The unit starts on its first line and ends on its last.
        assert text.count("\n", 0, chunk.start_char) + 1 == chunk.start_line
        assert text.count("\n", 0, max(chunk.end_char - 1, chunk.start_char)) + 1 == chunk.end_line
        assert chunk.end_line <= len(file_lines)
