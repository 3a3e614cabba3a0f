"""``-F rg-json``: events, text and base64 forms, context and groups, detection, invalid
lines; hypothesis: never raises (but for InputError without --skip-invalid), round-trips
events."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError
from rerank_cli.sources import ReadOptions, ReadReport, detect, read


def event(kind: str, path: Any, lines: Any, line: int | None, offset: int | None) -> bytes:
    data: dict[str, Any] = {
        "path": path,
        "lines": lines,
        "line_number": line,
        "absolute_offset": offset,
        "submatches": [{"match": {"text": "x"}, "start": 0, "end": 1}] if kind == "match" else [],
    }
    return orjson.dumps({"type": kind, "data": data}) + b"\n"


def begin(path: str) -> bytes:
    return orjson.dumps({"type": "begin", "data": {"path": {"text": path}}}) + b"\n"


def end(path: str) -> bytes:
    return orjson.dumps({"type": "end", "data": {"path": {"text": path}, "stats": {}}}) + b"\n"


def parse(data: bytes, report: ReadReport | None = None, **options: Any) -> list[Document]:
    return list(read(data, "in", ReadOptions(format="rg-json", **options), report or ReadReport()))


P = {"text": "src/a.py"}
STREAM = (
    begin("src/a.py")
    + event("context", P, {"text": "import os\n"}, 1, 0)
    + event("match", P, {"text": "x = 1\n"}, 2, 10)
    + event("context", P, {"text": "y = 2\n"}, 3, 16)
    + event("match", P, {"text": "far away\n"}, 9, 60)
    + end("src/a.py")
    + b'{"type":"summary","data":{"stats":{}}}\n'
)


def test_each_match_is_a_document_with_the_event_fields() -> None:
    docs = parse(STREAM)
    assert [d.text for d in docs] == ["x = 1", "far away"]
    assert docs[0].fields == {
        "path": "src/a.py",
        "line_number": 2,
        "absolute_offset": 10,
        "submatches": [{"match": {"text": "x"}, "start": 0, "end": 1}],
    }
    assert str(docs[0].source) == "src/a.py:2"


def test_plain_bytes_are_rg_text_output_with_context_attached() -> None:
    docs = parse(STREAM)
    assert docs[0].raw == b"src/a.py-1-import os\nsrc/a.py:2:x = 1\nsrc/a.py-3-y = 2\n"
    assert docs[1].raw == b"src/a.py:9:far away\n"
    assert all(d.separator == b"--\n" for d in docs)


def test_group_follows_offsets() -> None:
    docs = parse(STREAM, group=True)
    assert [d.text for d in docs] == ["import os\nx = 1\ny = 2", "far away"]
    assert docs[0].fields["line_number"] == 2  # the group's first match


def test_group_by_line_numbers_when_offsets_are_missing() -> None:
    stream = (
        event("match", P, {"text": "a\n"}, 1, None)
        + event("context", P, {"text": "b\n"}, 2, None)
        + event("match", P, {"text": "c\n"}, 5, None)
    )
    assert [d.text for d in parse(stream, group=True)] == ["a\nb", "c"]


def test_base64_bytes_for_lines_and_path() -> None:
    report = ReadReport()
    path = {"bytes": base64.b64encode(b"caf\xe9.txt").decode()}
    lines = {"bytes": base64.b64encode(b"na\xefve\r\n").decode()}
    docs = parse(event("match", path, lines, 4, 0), report)
    assert docs[0].text == "na\ufffdve"
    assert docs[0].fields["path"] == "caf\ufffd.txt"
    assert docs[0].raw == b"caf\xe9.txt:4:na\xefve\r\n"  # the bytes, as rg would print them
    assert report.warnings == ["in: invalid UTF-8 replaced with U+FFFD"]


def test_multiline_match_prints_each_line_with_its_number() -> None:
    docs = parse(event("match", P, {"text": "one\ntwo\n"}, 7, 0))
    assert docs[0].text == "one\ntwo"
    assert docs[0].raw == b"src/a.py:7:one\nsrc/a.py:8:two\n"


def test_missing_line_numbers_and_paths() -> None:
    docs = parse(event("match", None, {"text": "bare"}, None, None))
    assert docs[0].raw == b"bare"
    assert docs[0].fields["path"] is None


def test_with_path() -> None:
    assert parse(STREAM, with_path=True)[0].text == "src/a.py:2: x = 1"


def test_unknown_event_types_are_ignored_and_invalid_lines_are_errors() -> None:
    assert parse(b'{"type":"begin","data":{}}\n\n') == []
    with pytest.raises(InputError, match=r"in:2: not an rg --json event"):
        parse(begin("a") + b"not json\n")
    with pytest.raises(InputError, match=r"in:1: lines: invalid base64"):
        parse(event("match", P, {"bytes": "!!"}, 1, 0))
    report = ReadReport()
    docs = parse(b"[1]\n" + event("match", P, {"text": "ok\n"}, 1, 0), report, skip_invalid=True)
    assert [d.text for d in docs] == ["ok"]
    assert report.skipped == 1


def test_auto_detects_rg_json_by_its_first_event() -> None:
    assert detect(STREAM) == "rg-json"
    assert detect(b'{"type":"match","text":"an ordinary record"}\n') == "jsonl"
    assert [d.text for d in read(STREAM, "in", ReadOptions(), ReadReport())] == [
        "x = 1",
        "far away",
    ]


# --- hypothesis -------------------------------------------------------------------------------


@given(data=st.binary(max_size=300))
@settings(max_examples=200)
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    parse(data, skip_invalid=True)
    with contextlib.suppress(InputError):  # the one error invalid input may raise
        parse(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELD = st.one_of(
    JSON,
    st.builds(lambda t: {"text": t}, st.text(max_size=10)),
    st.builds(lambda b: {"bytes": base64.b64encode(b).decode()}, st.binary(max_size=10)),
)


@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["begin", "match", "context", "end", "summary", "other"]),
                "data": st.fixed_dictionaries(
                    {},
                    optional={
                        "path": FIELD,
                        "lines": FIELD,
                        "line_number": JSON,
                        "absolute_offset": JSON,
                        "submatches": JSON,
                    },
                ),
            }
        ),
        max_size=8,
    ),
    group=st.booleans(),
)
@settings(max_examples=300)
def test_never_raises_on_odd_events(events: list[dict[str, Any]], group: bool) -> None:
    data = b"".join(orjson.dumps(e) + b"\n" for e in events)
    docs = parse(data, skip_invalid=True, group=group, with_path=True)
    assert len(docs) <= sum(1 for e in events if e["type"] in ("match", "context"))


LINE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=12
)


@given(
    rows=st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
            st.binary(max_size=8).filter(lambda b: b"\n" not in b) | LINE.map(str.encode),
            st.integers(1, 10**9),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=200)
def test_round_trips_match_events(rows: list[tuple[str, bytes, int, bool]]) -> None:
    stream = b""
    for path, line, number, as_bytes in rows:
        content = line + b"\n"
        lines = {"bytes": base64.b64encode(content).decode()} if as_bytes else None
        if lines is None:
            try:
                lines = {"text": content.decode("utf-8")}
            except UnicodeDecodeError:
                lines = {"bytes": base64.b64encode(content).decode()}
        stream += begin(path) + event("match", {"text": path}, lines, number, None) + end(path)
    docs = parse(stream)
    assert len(docs) == len(rows)
    for doc, (path, line, number, _) in zip(docs, rows, strict=True):
        assert doc.fields["path"] == path
        assert doc.fields["line_number"] == number
        # A line ending in CR arrives as a CRLF line: its text ends before the CR.
        assert doc.text == line.removesuffix(b"\r").decode("utf-8", errors="replace")
        assert doc.raw == path.encode() + b":" + str(number).encode() + b":" + line + b"\n"
