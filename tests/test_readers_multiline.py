"""Multi-line documents: ``-F nul`` (``-0``) and ``-F paragraphs``, read and printed back."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from rerank_cli.core.documents import Document
from rerank_cli.sources import ReadOptions, ReadReport, read
from tests.conftest import RunCli

LEXICAL = ("--engine", "lexical")


def parse(data: bytes, fmt: str, **options: Any) -> list[Document]:
    return list(read(data, "in", ReadOptions(format=fmt, **options), ReadReport()))


# --- nul --------------------------------------------------------------------------------------


def test_nul_records_may_span_lines() -> None:
    docs = parse(b"first\nrecord\0second\0\0  \0third\nlast", "nul")
    assert [d.text for d in docs] == ["first\nrecord", "second", "third\nlast"]
    assert [d.raw for d in docs] == [b"first\nrecord\0", b"second\0", b"third\nlast\0"]
    assert [d.source.line for d in docs if d.source] == [1, 2, 2]


def test_nul_invalid_utf8_is_replaced_once() -> None:
    report = ReadReport()
    docs = list(read(b"a\xff\0b\xfe\0", "in", ReadOptions(format="nul"), report))
    assert [d.text for d in docs] == ["a\ufffd", "b\ufffd"]
    assert report.warnings == ["in: invalid UTF-8 replaced with U+FFFD"]


def test_dash_zero_reads_nul_records_and_plain_prints_them_nul_terminated(cli: RunCli) -> None:
    data = b"apples and\npears\0the capital of France\0bananas\0"
    result = cli("capital France", "-0", *LEXICAL, "-o", "plain", stdin=data)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split(b"\0")[0] == b"the capital of France"
    assert Counter(result.stdout.split(b"\0")) == Counter(data.split(b"\0"))
    records = cli("capital France", "--null", *LEXICAL, "-o", "jsonl", stdin=data).records()
    assert records[0]["text"] == "the capital of France"
    assert {r["text"] for r in records} == {"apples and\npears", "the capital of France", "bananas"}


def test_dash_zero_conflicts_with_another_format(cli: RunCli) -> None:
    result = cli("q", "-0", "-F", "jsonl", *LEXICAL, stdin=b"a\0")
    assert result.exit_code == 2
    assert "choose one input format" in result.stderr


@given(records=st.lists(st.binary(min_size=1, max_size=20).filter(lambda b: b"\0" not in b)))
def test_nul_round_trips(records: list[bytes]) -> None:
    assume(not b"".join(records).startswith(b"\xef\xbb\xbf"))  # a leading BOM is not data
    # Blank as a text is blank: ASCII or Unicode whitespace only (U+00A0, U+3000 …).
    kept = [r for r in records if r.decode("utf-8", "replace").strip()]
    docs = parse(b"".join(r + b"\0" for r in records), "nul")
    assert [d.raw for d in docs] == [r + b"\0" for r in kept]


# --- paragraphs -------------------------------------------------------------------------------

TEXT = b"First para\nstill first\n\n\n  \nSecond para\r\nstill second\r\n\r\nThird"


def test_paragraphs_split_on_blank_lines() -> None:
    docs = parse(TEXT, "paragraphs")
    assert [d.text for d in docs] == [
        "First para\nstill first",
        "Second para\nstill second",
        "Third",
    ]
    assert [d.source.line for d in docs if d.source] == [1, 6, 9]
    assert [d.raw for d in docs] == [
        b"First para\nstill first\n",
        b"Second para\r\nstill second\r\n",
        b"Third",
    ]


def test_paragraphs_plain_output_has_one_blank_line_between_blocks(cli: RunCli) -> None:
    result = cli("second", "-F", "paragraphs", *LEXICAL, "-o", "plain", stdin=TEXT)
    assert result.exit_code == 0, result.stderr
    # The blank line before a block is in that block's own line ending.
    assert result.stdout.startswith(b"Second para\r\nstill second\r\n\nFirst")
    blocks = result.stdout.replace(b"\r\n", b"\n").split(b"\n\n")
    assert Counter(blocks) == Counter(
        [b"First para\nstill first", b"Second para\nstill second", b"Third\n"]
    )
    assert not result.stdout.endswith(b"\n\n")  # between blocks, not after the last


def test_paragraphs_jsonl_source_line(cli: RunCli) -> None:
    records = cli("third", "-F", "paragraphs", *LEXICAL, "-o", "jsonl", stdin=TEXT).records()
    assert records[0]["text"] == "Third"
    assert records[0]["source"] == {"file": "<stdin>", "line": 9}


@given(
    blocks=st.lists(
        st.lists(st.from_regex(rb"[a-z ]*[a-z][a-z ]*", fullmatch=True), min_size=1, max_size=3),
        max_size=5,
    ),
    gap=st.integers(1, 3),
)
def test_paragraphs_round_trip(blocks: list[list[bytes]], gap: int) -> None:
    data = (b"\n" * gap).join(b"".join(line + b"\n" for line in block) for block in blocks)
    docs = parse(data, "paragraphs")
    assert [d.raw for d in docs] == [b"".join(line + b"\n" for line in b) for b in blocks]
