from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.core.documents import Chunk, Document
from rerank_cli.core.line_chunks import LineChunker, line_starts, split, splitter
from rerank_cli.errors import UsageError


def numbered(count: int, end: str = "\n") -> str:
    return "".join(f"line {n}{end}" for n in range(1, count + 1))


def ranges(chunks: list[Chunk]) -> list[tuple[int | None, int | None]]:
    return [(c.start_line, c.end_line) for c in chunks]


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("", []),
        ("a", [0]),
        ("a\n", [0]),
        ("a\nb", [0, 2]),
        ("a\nb\n", [0, 2]),
        ("\n\n", [0, 1]),
        ("a\r\nb\r\n", [0, 3]),
    ],
)
def test_line_starts(text: str, starts: list[int]) -> None:
    assert line_starts(text) == starts


def test_a_small_file_is_one_chunk() -> None:
    text = numbered(60)
    assert ranges(LineChunker().chunks(text)) == [(1, 60)]
    chunk = LineChunker().chunks(text)[0]
    assert (chunk.start_char, chunk.end_char) == (0, len(text))


def test_windows_of_60_lines_overlapping_by_10() -> None:
    text = numbered(200)
    chunks = LineChunker(60, 10).chunks(text)
    assert ranges(chunks) == [(1, 60), (51, 110), (101, 160), (151, 200)]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    second = text[chunks[1].start_char : chunks[1].end_char]
    assert second.startswith("line 51\n")
    assert second.endswith("line 110\n")


def test_one_line_past_a_window_makes_a_second_chunk() -> None:
    assert ranges(LineChunker(60, 10).chunks(numbered(61))) == [(1, 60), (51, 61)]


def test_no_overlap_tiles_the_text() -> None:
    assert ranges(LineChunker(3, 0).chunks(numbered(7))) == [(1, 3), (4, 6), (7, 7)]


def test_a_missing_final_newline_and_crlf_are_kept() -> None:
    text = "a\r\nb\r\nc"
    chunks = LineChunker(2, 1).chunks(text)
    assert ranges(chunks) == [(1, 2), (2, 3)]
    assert [text[c.start_char : c.end_char] for c in chunks] == ["a\r\nb\r\n", "b\r\nc"]


def test_empty_text_has_no_chunks() -> None:
    assert LineChunker().chunks("") == []


def test_a_window_stops_at_the_size_limit_and_a_long_line_is_cut() -> None:
    text = "short\n" + "x" * 25 + "\nend\n"
    chunks = LineChunker(60, 10, max_chars=10).chunks(text)
    pieces = [text[c.start_char : c.end_char] for c in chunks]
    assert pieces == ["short\n", "x" * 10, "x" * 10, "x" * 5 + "\n", "end\n"]
    assert ranges(chunks) == [(1, 1), (2, 2), (2, 2), (2, 2), (3, 3)]


def test_the_overlap_shrinks_with_a_window_cut_short() -> None:
    text = numbered(9)  # "line N\n": 7 characters a line
    chunks = LineChunker(6, 2, max_chars=7 * 4).chunks(text)
    # Windows of 4 lines (the budget) instead of 6; overlap 2 * 4 // 6 = 1 line.
    assert ranges(chunks) == [(1, 4), (4, 7), (7, 9)]


@pytest.mark.parametrize(("lines", "overlap"), [(0, 0), (5, 5), (5, 6), (5, -1)])
def test_bad_sizes_are_usage_errors(lines: int, overlap: int) -> None:
    with pytest.raises(UsageError):
        LineChunker(lines, overlap)


def test_split_drops_blank_windows_and_keeps_line_numbers() -> None:
    text = "alpha\n" + "\n" * 10 + "omega\n"
    units = split(LineChunker(3, 0), text)
    assert [(c.start_line, c.end_line, piece) for c, piece in units] == [
        (1, 3, "alpha\n\n\n"),
        (10, 12, "\n\nomega\n"),
    ]


def test_splitter_maps_a_document_to_its_chunks() -> None:
    document = Document(text=numbered(5), raw=b"")
    units = splitter(LineChunker(2, 0))(document)
    assert [piece for _, piece in units] == ["line 1\nline 2\n", "line 3\nline 4\n", "line 5\n"]


lines_strategy = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=12), max_size=40
)


@given(
    lines=lines_strategy,
    final_newline=st.booleans(),
    size=st.integers(1, 8),
    overlap=st.integers(0, 7),
    max_chars=st.one_of(st.none(), st.integers(1, 30)),
)
def test_chunk_invariants(
    lines: list[str], final_newline: bool, size: int, overlap: int, max_chars: int | None
) -> None:
    overlap = min(overlap, size - 1)
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    chunks = LineChunker(size, overlap, max_chars).chunks(text)
    if not text:
        assert chunks == []
        return
    # They cover the text from its first to its last character, in order, without gaps.
    assert chunks[0].start_char == 0
    assert chunks[-1].end_char == len(text)
    for before, after in itertools.pairwise(chunks):
        assert before.start_char < after.start_char <= before.end_char
        assert before.end_char < after.end_char
    for index, chunk in enumerate(chunks):
        piece = text[chunk.start_char : chunk.end_char]
        assert chunk.index == index
        assert piece
        assert chunk.start_line is not None
        assert chunk.end_line is not None
        # The line numbers are those of the chunk's first and last characters.
        assert chunk.start_line == text.count("\n", 0, chunk.start_char) + 1
        assert chunk.end_line == text.count("\n", 0, chunk.end_char - 1) + 1
        assert chunk.end_line - chunk.start_line < size
        if max_chars is not None:
            assert len(piece) <= max_chars
    if max_chars is None:
        step = size - overlap
        assert [c.start_line for c in chunks] == [1 + step * i for i in range(len(chunks))]
