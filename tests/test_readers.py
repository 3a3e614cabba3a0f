"""Readers: lines, jsonl, json, auto-detection, decoding and invalid input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.errors import InputError
from rerank_cli.sources import FORMATS, ReadOptions, ReadReport, detect, read
from rerank_cli.sources.records import split_lines


def docs(data: bytes, **options: object) -> list:  # type: ignore[type-arg]
    return list(read(data, "in.txt", ReadOptions(**options), ReadReport()))  # type: ignore[arg-type]


def test_lines_keep_numbers_skip_blanks_and_strip_only_the_terminator() -> None:
    found = docs(b"first\r\n\n  \nsecond line  \nlast", format="lines")
    assert [d.text for d in found] == ["first", "second line  ", "last"]
    assert [d.source.line for d in found] == [1, 4, 5]
    assert [d.raw for d in found] == [b"first\r\n", b"second line  \n", b"last"]


def test_bom_is_stripped_and_invalid_utf8_replaced_with_one_warning() -> None:
    report = ReadReport()
    found = list(read(b"\xef\xbb\xbfok\nbad \xff\nworse \xfe\n", "f", ReadOptions(), report))
    assert [d.text for d in found] == ["ok", "bad \ufffd", "worse \ufffd"]
    assert report.warnings == ["f: invalid UTF-8 replaced with U+FFFD"]


def test_lone_carriage_return_does_not_end_a_line() -> None:
    assert [d.text for d in docs(b"a\rb\nc\n")] == ["a\rb", "c"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[{"text": "a"}]', "json"),
        (b'\xef\xbb\xbf  \n ["a"]', "json"),
        (b'\n\n{"text": "a"}\n', "jsonl"),
        (b'{"text": broken\n', "jsonl"),  # a broken first line is reported, not read as text
        (b"{\n", "jsonl"),
        (b'"just a string"\n', "jsonl"),
        (b'\n"a"\n\n"b \\"quoted\\""\n{"text": "c"}\n', "jsonl"),
        (b'"To be, or not to be," he said.\n', "lines"),
        (b'"a"\n"b"\nplain text\n', "lines"),
        (b'"a"\n42\n', "lines"),
        (b"plain text\n", "lines"),
        (b"", "lines"),
    ],
)
def test_detect(data: bytes, expected: str) -> None:
    assert detect(data) == expected


def test_jsonl_objects_strings_default_and_dotted_fields() -> None:
    data = b'{"id": 7, "body": "from body"}\n"a bare string"\n{"text": "t", "content": "c"}\n'
    found = docs(data, format="jsonl", id_field="id")
    assert [d.text for d in found] == ["from body", "a bare string", "t"]
    assert found[0].id == 7 and found[0].record == {"id": 7, "body": "from body"}
    assert found[1].record is None
    nested = docs(b'{"meta": {"body": "deep"}}\n', field="meta.body")
    assert nested[0].text == "deep"


def test_jsonl_invalid_line_names_file_and_line() -> None:
    with pytest.raises(InputError) as caught:
        docs(b'{"text": "a"}\n\n{"text": nope}\n', format="jsonl")
    assert caught.value.message.startswith("in.txt:3: invalid JSON")


def test_skip_invalid_counts_and_warns() -> None:
    report = ReadReport()
    data = b'{"text": "a"}\n{oops\n{"other": 1}\n{"text": "b"}\n'
    options = ReadOptions(format="jsonl", skip_invalid=True)
    found = list(read(data, "x.jsonl", options, report))
    assert [d.text for d in found] == ["a", "b"]
    assert report.skipped == 2
    assert report.warnings[0].startswith("x.jsonl:2: invalid JSON")
    assert "x.jsonl:3: no text field" in report.warnings[1]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"text": null}', "in.txt:1: text is null (expected a string)"),
        (b'{"text": ["a"]}', "in.txt:1: text is a list (expected a string)"),
        (b'{"text": {"a": 1}}', "in.txt:1: text is an object (expected a string)"),
        (b'{"text": true}', "in.txt:1: text is a boolean (expected a string)"),
        (b"[1, 2]", "in.txt:1: the record is a list (expected an object or a string)"),
        (b"42", "in.txt:1: the record is a number (expected an object or a string)"),
        (b"null", "in.txt:1: the record is null (expected an object or a string)"),
    ],
)
def test_jsonl_records_without_usable_text(line: bytes, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        docs(line + b"\n", format="jsonl")
    assert caught.value.message == reason


def test_missing_chosen_field() -> None:
    with pytest.raises(InputError, match=re.escape("in.txt:1: no field 'meta.body'")):
        docs(b'{"meta": {}}\n', format="jsonl", field="meta.body")


def test_numbers_are_text() -> None:
    assert docs(b'{"text": 3.5}\n', format="jsonl")[0].text == "3.5"


def test_json_array() -> None:
    found = docs(b'["a", {"content": "b", "k": 1}]', format="json")
    assert [d.text for d in found] == ["a", "b"]
    assert found[1].record == {"content": "b", "k": 1}
    assert found[1].source is not None and found[1].source.line is None


def test_json_errors() -> None:
    with pytest.raises(InputError, match=r"in.txt:2: invalid JSON"):
        docs(b'[\n"a",,\n]', format="json")
    with pytest.raises(InputError, match="expected a JSON array"):
        docs(b'{"text": "a"}', format="json")


def reference_lines(data: bytes, name: str, report: ReadReport) -> list[tuple[str, bytes, int]]:
    """The lines format as specified, one line at a time: what the fast reader must equal."""
    out = []
    for number, raw in split_lines(data.removeprefix(b"\xef\xbb\xbf")):
        body = raw.removesuffix(b"\n").removesuffix(b"\r") if raw.endswith(b"\n") else raw
        if body.decode("utf-8", "replace").strip():  # blank: Unicode whitespace too
            out.append((report.decode(body, name), raw, number))
    return out


LINE_BYTES = st.lists(
    st.sampled_from(
        [
            b"a",
            b"\xc3\xa9",
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b"\r\n",
            b"\xff",
            b"\x0b",
            b"\xef\xbb\xbf",
            b"\x1c",
            b"\xc2\xa0",
            b"\xc2",
            b"\xe3\x80\x80",
            b"\xe2\x80",
        ]  # with whitespace bytes.strip() leaves (and cut ones)
    ),
    max_size=40,
).map(b"".join)


@given(st.one_of(LINE_BYTES, st.binary(max_size=200)))
def test_lines_reader_matches_the_line_by_line_definition(data: bytes) -> None:
    expected_report, report = ReadReport(), ReadReport()
    expected = reference_lines(data, "f", expected_report)
    # The reader itself (read() refuses input with a NUL byte as binary before it gets here).
    found = list(FORMATS["lines"](data, "f", ReadOptions(format="lines"), report))
    assert [(d.text, d.raw, d.source.line) for d in found] == expected
    assert report.warnings == expected_report.warnings


@given(st.binary(max_size=200))
def test_split_lines_rebuilds_the_input(data: bytes) -> None:
    assert b"".join(raw for _, raw in split_lines(data)) == data


def is_json_array_input(data: bytes) -> bool:
    """What auto-detection reads as a JSON array: ``[`` first, after a BOM and blanks."""
    return data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b" [" + b)))
def test_readers_never_crash_on_arbitrary_bytes(data: bytes) -> None:
    for fmt in ("auto", "lines", "jsonl", "json"):
        options = ReadOptions(format=fmt, skip_invalid=True)
        try:
            found = list(read(data, "f", options, ReadReport()))
        except InputError as error:
            if b"\0" in data:  # binary: refused whole, whatever --skip-invalid says
                assert str(error).startswith("f: binary file (a NUL byte in the first 8 KB)")
                continue
            # Only a broken JSON array is fatal (by design): --skip-invalid skips records, and
            # an array that does not parse has none to skip.
            assert fmt == "json" or (fmt == "auto" and is_json_array_input(data)), error
            assert re.search(r"invalid JSON|expected a JSON array", str(error)), error
            continue
        assert all(isinstance(d.text, str) for d in found)
