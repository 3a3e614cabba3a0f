"""Writers: each format's bytes for known results."""

from __future__ import annotations

import io

import orjson
import pytest

from rerank_cli.core.documents import Chunk, Document, Result, Source
from rerank_cli.writers import WriteOptions, write


def results() -> list[Result]:
    a = Document(text="tab\there", raw=b"tab\there\r\n", source=Source("f.txt", 3), index=2)
    b = Document(
        text="b", raw=b'{"text": "b", "k": 1}\n', record={"text": "b", "k": 1}, id="x", index=0
    )
    c = Document(text="no newline", raw=b"no newline", index=1)
    return [
        Result(1, 0.9, a),
        Result(2, 0.5, b, chunk=Chunk(index=1, start_char=4, end_char=9)),
        Result(3, 0.25, c),
    ]


def render(fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    write(results(), fmt, out, WriteOptions(**options))  # type: ignore[arg-type]
    return out.getvalue()


def test_jsonl_keys_in_order() -> None:
    lines = [orjson.loads(line) for line in render("jsonl").splitlines()]
    assert list(lines[0]) == ["rank", "score", "index", "text", "source"]
    assert lines[0]["source"] == {"file": "f.txt", "line": 3}
    assert list(lines[1]) == ["rank", "score", "index", "text", "id", "document", "chunk"]
    assert lines[1]["chunk"] == {"index": 1, "start_char": 4, "end_char": 9}
    assert list(lines[2]) == ["rank", "score", "index", "text"]


def test_json_is_one_array_of_the_same_records() -> None:
    assert orjson.loads(render("json")) == [orjson.loads(x) for x in render("jsonl").splitlines()]


def test_plain_is_the_raw_records_byte_for_byte() -> None:
    assert render("plain") == b'tab\there\r\n{"text": "b", "k": 1}\nno newline\n'


def test_tsv_escapes() -> None:
    assert render("tsv") == b"0.9000\ttab\\there\n0.5000\tb\n0.2500\tno newline\n"


@pytest.mark.parametrize("width", [40, 80, 200])
def test_table_fits_the_width_and_keeps_every_column(width: int) -> None:
    long = Document(text="word " * 100, raw=b"", source=Source("a/b.txt", 12), index=0)
    out = io.BytesIO()
    write([Result(1, 0.123456, long)], "table", out, WriteOptions(width=width))
    lines = out.getvalue().decode().splitlines()
    assert lines[0].split() == ["#", "score", "text", "source"]
    assert all(len(line) <= width for line in lines)
    assert "0.1235" in lines[1] and "a/b.txt:12" in lines[1] and "…" in lines[1]
    assert "\x1b[" not in out.getvalue().decode()


def test_table_colour_only_when_asked() -> None:
    assert b"\x1b[" in render("table", color=True)
    assert b"\x1b[" not in render("table", color=False)


def test_table_keeps_the_end_of_a_long_source() -> None:
    path = "very/deep/" * 10 + "file.py"
    doc = Document(text="t", raw=b"", source=Source(path, 12), index=0)
    out = io.BytesIO()
    write([Result(1, 0.5, doc)], "table", out, WriteOptions(width=120))
    assert "file.py:12" in out.getvalue().decode()


@pytest.mark.parametrize("width", [40, 80, 200])
def test_table_with_ids_fits_the_width(width: int) -> None:
    long = Document(text="word " * 100, raw=b"", source=Source("a/b.txt", 12), id="t-" + "x" * 40)
    short = Document(text="hi", raw=b"", id={"n": 1})
    out = io.BytesIO()
    write([Result(1, 0.5, long), Result(2, 0.25, short)], "table", out, WriteOptions(width=width))
    lines = out.getvalue().decode().splitlines()
    assert lines[0].split() == ["#", "score", "id", "text", "source"]
    assert all(len(line) <= width and line == line.rstrip() for line in lines)
    assert "a/b.txt:12" in lines[1] and "t-x" in lines[1] and '{"n' in lines[2]
