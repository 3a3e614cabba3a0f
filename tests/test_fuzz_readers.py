"""Fuzzing every reader and the response parser: whatever the bytes, only the documented error
(:class:`InputError` for input, :class:`BadResponse` for an answer) and never a document lost
or invented. Each reader's invariant is stated where it is tested:

- records: decoding equals UTF-8 with U+FFFD, one warning per input; a line is blank exactly
  when its text is (``is_blank``, Unicode whitespace included).
- lines (through ``read``): refused as binary exactly when a NUL is in the first 8 KB; else the
  documents are the non-blank lines, in order, with their numbers.
- nul: the documents are the non-blank NUL-separated records, with the line each starts on.
- paragraphs: the documents are the maximal runs of non-blank lines, every such line once.
- jsonl: every valid line with text yields its document, in order, at its line; every other line
  but JSON's blank ones is skipped and counted (``--skip-invalid``) or stops the run at the
  first, naming its line (a line of no-break spaces is not JSON: it is said so).
- json: every element with text yields its document; the others as for jsonl, by element.
- grep (with context): each match line is one document with its path, line and text; each
  context line is printed with the nearest match of its group (the earlier on a tie).
- rg-json (with context): the same, for ``match`` and ``context`` events.
- the response parser: any body gives exactly one finite score per document index, or raises
  :class:`BadResponse`; the error-body readers never raise.

tests/test_readers*.py and tests/test_protocol_parse.py hold the fuzzing that was there before
(arbitrary bytes never crash grep and rg-json, their round trips of match lines, the lines
reader against its line-by-line definition, the parser's quick path against its definition):
this module adds what they did not check."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rerank_cli.core.documents import Document
from rerank_cli.engines.api.protocol import error_message, error_retry_after, parse_response
from rerank_cli.errors import BadResponse, InputError
from rerank_cli.sources import FORMATS, ReadOptions, ReadReport, read
from rerank_cli.sources.records import (
    chomp,
    handle_invalid,
    is_blank,
    is_blank_line,
    split_lines,
    strip_bom,
)
from tests.test_protocol_parse import reference as scores_by_definition

BOM = b"\xef\xbb\xbf"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that exercise the readers' edges: line ends, blanks of both kinds (ASCII and Unicode
# whitespace, a cut UTF-8 sequence), invalid UTF-8, NUL, a BOM, JSON punctuation.
PIECES = [b"a", b"Z9", b"\xc3\xa9", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c",
          b"\x1c", b"\xc2\xa0", b"\xe3\x80\x80", b"\xe2\x80\xa8", b"\xc2", b"\xe2\x80", b"\xff",
          b"\x00", BOM, b"{", b"}", b'"', b"[", b":"]  # fmt: skip
SHAPED = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)
ANY_BYTES = st.one_of(st.binary(max_size=300), SHAPED)


def texts_of(docs: list[Document]) -> list[tuple[str, int | None]]:
    return [(d.text, d.source.line if d.source else None) for d in docs]


# --- records ------------------------------------------------------------------------------------


@given(inputs=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), ANY_BYTES), max_size=8))
def test_decoding_is_utf8_with_replacement_and_one_warning_per_input(
    inputs: list[tuple[str, bytes]],
) -> None:
    report = ReadReport()
    for name, raw in inputs:
        assert report.decode(raw, name) == raw.decode("utf-8", "replace")
    invalid = []
    for name, raw in inputs:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            if name not in invalid:
                invalid.append(name)
    assert report.warnings == [f"{name}: invalid UTF-8 replaced with U+FFFD" for name in invalid]


@given(ANY_BYTES)
def test_a_line_is_blank_exactly_when_its_text_is(body: bytes) -> None:
    assert is_blank_line(body) == is_blank(body.decode("utf-8", "replace"))


@given(ANY_BYTES)
def test_chomp_removes_only_the_terminator(data: bytes) -> None:
    for _, raw in split_lines(data):
        body = chomp(raw)
        assert raw in (body, body + b"\n", body + b"\r\n")
        assert raw.endswith(b"\n") or body == raw  # only LF ends a line: a lone CR stays


@given(errors=st.lists(st.booleans(), max_size=6), skip=st.booleans())
def test_an_invalid_record_is_skipped_and_counted_or_raised(errors: list[bool], skip: bool) -> None:
    report = ReadReport()
    options = ReadOptions(skip_invalid=skip)
    for line, _ in enumerate(errors, 1):
        error = InputError("bad", "f", line)
        if skip:
            handle_invalid(error, options, report)
        else:
            with pytest.raises(InputError) as raised:
                handle_invalid(error, options, report)
            assert raised.value is error
    assert report.skipped == (len(errors) if skip else 0)
    assert report.warnings == ([f"f:{n}: bad (skipped)" for n in range(1, len(errors) + 1)] * skip)


# --- lines, through read(): the binary check, then the reader -----------------------------------


def non_blank_lines(data: bytes) -> list[tuple[str, int]]:
    """The lines format's documents by its definition: (text, line number) of each line
    whose text is not blank; only LF ends a line, and a CR before it is the terminator's."""
    out = []
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw) if raw.endswith(b"\n") else raw
        text = body.decode("utf-8", "replace")
        if not is_blank(text):
            out.append((text, number))
    return out


@given(
    data=ANY_BYTES,
    pad=st.one_of(st.just(0), st.integers(8180, 8200)),
    fmt=st.sampled_from(["lines", "auto"]),
)
@FUZZ
def test_lines_are_refused_as_binary_exactly_for_a_nul_in_the_first_8_kb(
    data: bytes, pad: int, fmt: str
) -> None:
    data = b"x\n" * (pad // 2) + data  # a NUL on either side of the 8 KB line
    if fmt == "auto":
        assume(not strip_bom(data).lstrip().startswith((b"[", b"{", b'"')))  # JSON, else
    options = ReadOptions(format=fmt, grep_root="/nonexistent")
    try:
        docs = list(read(data, "f", options, ReadReport()))
    except InputError as error:
        assert b"\0" in data[:8192]
        assert str(error) == (
            "f: binary file (a NUL byte in the first 8 KB); for NUL-separated records use -0"
        )
        return
    assert b"\0" not in data[:8192]
    if fmt == "lines" or not re.search(rb"(?m)^[^\n:]*:\d+:", data):  # auto may mean grep
        assert texts_of(docs) == non_blank_lines(data)


# --- nul ----------------------------------------------------------------------------------------


@given(ANY_BYTES)
@FUZZ
def test_nul_documents_are_the_non_blank_records_with_their_first_line(data: bytes) -> None:
    report = ReadReport()
    docs = list(read(data, "f", ReadOptions(format="nul"), report))  # never binary: NUL is data
    body = strip_bom(data)
    expected = []
    start = 0
    for record in body.split(b"\0"):
        text = record.decode("utf-8", "replace")
        if not is_blank(text):
            expected.append((text, record + b"\0", body.count(b"\n", 0, start) + 1))
        start += len(record) + 1
    assert [(d.text, d.raw, d.source.line if d.source else None) for d in docs] == expected


# --- paragraphs ---------------------------------------------------------------------------------


@given(ANY_BYTES)
@FUZZ
def test_paragraphs_are_the_runs_of_non_blank_lines(data: bytes) -> None:
    docs = list(FORMATS["paragraphs"](data, "f", ReadOptions(), ReadReport()))
    lines = list(split_lines(strip_bom(data)))
    blank = [is_blank(chomp(raw).decode("utf-8", "replace")) for _, raw in lines]
    kept = [raw for (_, raw), empty in zip(lines, blank, strict=True) if not empty]
    # Every non-blank line once, in order, in exactly one paragraph …
    assert b"".join(d.raw for d in docs) == b"".join(kept)
    # … and a paragraph starts at each non-blank line that follows a blank one (or the start).
    starts = [
        lines[i][0] for i, empty in enumerate(blank) if not empty and (i == 0 or blank[i - 1])
    ]
    assert [d.source.line if d.source else None for d in docs] == starts
    for doc in docs:
        assert doc.text.split("\n") == [
            chomp(raw).decode("utf-8", "replace") for _, raw in split_lines(doc.raw)
        ]


# --- jsonl and json -----------------------------------------------------------------------------

WORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
TEXT = WORD.filter(lambda t: not is_blank(t))
BLANK = st.sampled_from(["", " ", "\t\n", "\u00a0", "\u3000 "])
FIELD = st.sampled_from(["text", "document", "content", "body", "passage"])
# (kind, value): what one JSON record is, and so what the reader must make of it.
RECORD = st.one_of(
    st.tuples(st.just("doc"), TEXT),
    st.tuples(st.just("doc"), st.builds(lambda f, t: {f: t, "n": 1}, FIELD, TEXT)),
    st.tuples(
        st.just("doc"),
        st.builds(lambda n: {"text": n}, st.integers(-(2**63), 2**63 - 1) | st.floats(0, 9)),
    ),
    st.tuples(st.just("blank"), BLANK),
    st.tuples(st.just("blank"), st.builds(lambda t: {"body": t}, BLANK)),
    st.tuples(
        st.just("no text"),
        st.sampled_from([None, True, 3, [1], {"x": "y"}, {"text": None}, {"text": ["a"]}]),
    ),
)
INVALID = st.one_of(
    st.sampled_from([b'{"text": ', b"{oops}", b"[1,", b'"open', b"nul", b"{'a': 1}", b"\xff{"]),
    st.binary(min_size=1, max_size=12),
).filter(lambda b: b"\n" not in b and not is_blank_line(b) and not _parses(b))
JSONL_LINE = st.one_of(
    RECORD.map(lambda kv: (kv[0], orjson.dumps(kv[1]), kv[1])),
    INVALID.map(lambda b: ("invalid", b, None)),
    # JSON's own whitespace (and \v, \f): a line of other whitespace is not JSON, and said so.
    st.sampled_from([b"", b" ", b"\t \x0b\x0c"]).map(lambda b: ("blank line", b, None)),
    st.sampled_from(["\u00a0", " \u3000"]).map(lambda t: ("invalid", t.encode(), None)),
)


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return False
    return True


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = next(value[f] for f in ("text", "document", "content", "body", "passage") if f in value)
    return text if isinstance(text, str) else str(text)


def consume(documents: Iterator[Document], into: list[Document]) -> None:
    for document in documents:
        into.append(document)


@given(
    lines=st.lists(JSONL_LINE, max_size=12),
    crlf=st.booleans(),
    bom=st.booleans(),
    skip=st.booleans(),
)
@FUZZ
def test_jsonl_every_valid_line_yields_its_document_and_every_other_is_accounted_for(
    lines: list[tuple[str, bytes, Any]], crlf: bool, bom: bool, skip: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    data = (BOM if bom else b"") + b"".join(line + end for _, line, _ in lines)
    report = ReadReport()
    docs: list[Document] = []
    expected = [(text_of(v), n) for n, (kind, _, v) in enumerate(lines, 1) if kind == "doc"]
    bad = [n for n, (kind, _, _) in enumerate(lines, 1) if kind in ("invalid", "no text")]
    options = ReadOptions(format="jsonl", skip_invalid=skip)
    jsonl = FORMATS["jsonl"]  # the reader itself: read() refuses a NUL as binary, fuzzed above
    if skip or not bad:
        consume(jsonl(data, "f", options, report), docs)
        assert texts_of(docs) == expected
        assert report.skipped == len(bad) + sum(kind == "blank" for kind, _, _ in lines)
        skipped = [w for w in report.warnings if w != "f: invalid UTF-8 replaced with U+FFFD"]
        assert [w.split(":")[1] for w in skipped] == [str(n) for n in bad]
        assert all(w.endswith(" (skipped)") for w in skipped)
        for doc, (_, raw, value) in zip(docs, [x for x in lines if x[0] == "doc"], strict=True):
            assert doc.raw == raw + end
            assert doc.record == (value if isinstance(value, dict) else None)
        return
    with pytest.raises(InputError) as raised:
        consume(jsonl(data, "f", options, report), docs)
    assert (raised.value.file, raised.value.line) == ("f", bad[0])
    assert texts_of(docs) == [(text, n) for text, n in expected if n < bad[0]]


@given(records=st.lists(RECORD, max_size=10), skip=st.booleans())
@FUZZ
def test_json_every_element_with_text_yields_its_document(
    records: list[tuple[str, Any]], skip: bool
) -> None:
    data = orjson.dumps([value for _, value in records])
    report = ReadReport()
    docs: list[Document] = []
    bad = [i for i, (kind, _) in enumerate(records) if kind == "no text"]
    expected = [text_of(value) for kind, value in records if kind == "doc"]
    options = ReadOptions(format="json", skip_invalid=skip)
    if skip or not bad:
        consume(read(data, "f", options, report), docs)
        assert [d.text for d in docs] == expected
        assert [d.raw for d in docs] == [orjson.dumps(v) + b"\n" for k, v in records if k == "doc"]
        assert report.skipped == len(bad) + sum(kind == "blank" for kind, _ in records)
        assert [w.split(":")[1].strip() for w in report.warnings] == [f"element {i}" for i in bad]
        return
    with pytest.raises(InputError, match=f"^f: element {bad[0]}: "):
        consume(read(data, "f", options, report), docs)
    assert len(docs) == sum(kind == "doc" for kind, _ in records[: bad[0]])


@given(data=ANY_BYTES.map(lambda b: b"[" + b), skip=st.booleans())
@FUZZ
def test_json_arrays_parse_or_stop_with_the_input_error(data: bytes, skip: bool) -> None:
    try:
        docs = list(FORMATS["json"](data, "f", ReadOptions(skip_invalid=skip), ReadReport()))
    except InputError as error:
        assert str(error).startswith("f")
        return
    assert all(not is_blank(d.text) for d in docs)


# --- grep, with context lines -------------------------------------------------------------------

NAMES = ["a.py", "weird:name.txt", "x-12-y.txt", "dir with spaces/b c.txt", "12", "n-1-.md"]
LINE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0\x1b\x85\u2028\u2029"),
    max_size=20,
).filter(lambda t: not re.match(r"\d+[:-]", t))  # no second line number: that is `--column`


@pytest.fixture(scope="module")
def named_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz-names")
    for name in NAMES:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("")
    return base


# A group: a path, its first line number, and its lines (match?, text); at least one match.
GROUP = st.tuples(
    st.sampled_from(NAMES),
    st.integers(1, 10**6),
    st.lists(st.tuples(st.booleans(), LINE_TEXT), min_size=1, max_size=5).filter(
        lambda rows: any(match for match, _ in rows)
    ),
)


def owners(matches: list[bool]) -> list[int]:
    """For each line of a group, the line of the match it is printed with: itself for a match,
    else the nearest match (the earlier on a tie)."""
    where = [i for i, match in enumerate(matches) if match]
    return [min(where, key=lambda m: (abs(m - i), m)) for i in range(len(matches))]


@given(groups=st.lists(GROUP, min_size=1, max_size=4))
@FUZZ
def test_grep_each_match_is_one_document_with_its_context(
    named_root: Path, groups: list[tuple[str, int, list[tuple[bool, str]]]]
) -> None:
    data = b""
    expected = []
    for index, (path, first, rows) in enumerate(groups):
        if index:
            data += b"--\n"
        printed = []
        for offset, (match, text) in enumerate(rows):
            sep = ":" if match else "-"
            printed.append(f"{path}{sep}{first + offset}{sep}{text}\n".encode())
        data += b"".join(printed)
        owner = owners([match for match, _ in rows])
        for i, (match, text) in enumerate(rows):
            if match:
                raw = b"".join(p for j, p in enumerate(printed) if owner[j] == i)
                expected.append((path, first + i, text, raw))
    options = ReadOptions(format="grep", grep_root=str(named_root))
    docs = list(read(data, "<stdin>", options, ReadReport()))
    found = [(d.fields["path"], d.fields["line"], d.text, d.raw) for d in docs if d.fields]
    assert found == expected


# --- rg --json, with context events -------------------------------------------------------------

RG_LINE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=12
)


@given(
    files=st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),
            st.integers(1, 10**6),
            st.lists(st.tuples(st.booleans(), RG_LINE), min_size=1, max_size=5).filter(
                lambda rows: any(match for match, _ in rows)
            ),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda f: f[0],
    ),
    group=st.booleans(),
)
@FUZZ
def test_rg_json_each_match_event_is_one_document_with_its_context(
    files: list[tuple[str, int, list[tuple[bool, str]]]], group: bool
) -> None:
    stream = b""
    expected = []
    for path, first, rows in files:
        stream += orjson.dumps({"type": "begin", "data": {"path": {"text": path}}}) + b"\n"
        offset = 0
        printed = []
        for i, (match, text) in enumerate(rows):
            kind = "match" if match else "context"
            data = {
                "path": {"text": path},
                "lines": {"text": text + "\n"},
                "line_number": first + i,
                "absolute_offset": offset,
                "submatches": [],
            }
            stream += orjson.dumps({"type": kind, "data": data}) + b"\n"
            offset += len((text + "\n").encode())
            sep = ":" if match else "-"
            printed.append(f"{path}{sep}{first + i}{sep}{text}\n".encode())
        stream += orjson.dumps({"type": "end", "data": {"path": {"text": path}}}) + b"\n"
        if group:  # one file's events follow each other: one group, one document
            main = next(i for i, (match, _) in enumerate(rows) if match)
            expected.append((path, first + main, b"".join(printed)))
            continue
        owner = owners([match for match, _ in rows])
        for i, (match, _) in enumerate(rows):
            if match:
                raw = b"".join(p for j, p in enumerate(printed) if owner[j] == i)
                expected.append((path, first + i, raw))
    options = ReadOptions(format="rg-json", group=group)
    docs = list(read(stream, "<stdin>", options, ReadReport()))
    found = [(d.fields["path"], d.fields["line_number"], d.raw) for d in docs if d.fields]
    assert found == expected


# --- the response parser ------------------------------------------------------------------------

KEY = st.one_of(
    st.sampled_from(
        [
            "results",
            "data",
            "index",
            "score",
            "relevance_score",
            "error",
            "message",
            "detail",
            "msg",
            "retry_after_s",
            "code",
        ]
    ),
    st.text(max_size=3),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-2, 6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEY, inner, max_size=4),
    max_leaves=16,
)
# Near a valid answer, so that the parser's accepting path is fuzzed as much as its refusals:
# mostly an index in range and a numeric score, as many items as documents, now and then not.
ITEM = st.fixed_dictionaries(
    {
        "index": st.one_of(st.integers(0, 5), st.integers(0, 5), SCALAR),
        "relevance_score": st.one_of(st.floats(-5, 5), st.floats(-5, 5), SCALAR),
    },
    optional={"score": SCALAR, "document": JSON},
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[Any, int]:
    items = draw(st.lists(ITEM, max_size=6))
    count = draw(st.one_of(st.just(len(items)), st.integers(0, 6)))
    shape = draw(st.sampled_from(["results", "data", "bare", "other"]))
    if shape == "bare":
        return items, count
    return {draw(KEY) if shape == "other" else shape: items}, count


def items_of(payload: Any) -> list[Any] | None:
    """The result list of any of the three accepted shapes, as the README names them."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("results", "data"):
            if isinstance(payload.get(key), list):
                return list(payload[key])
    return None


def check_answer(body: bytes, count: int) -> None:
    try:
        scores = parse_response(body, count)
    except BadResponse as error:
        assert str(error).startswith("unexpected response from API: ")
        scores = None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        assert scores is None
        return
    items = items_of(payload)
    expected = None if items is None else scores_by_definition(items, count)
    assert scores == expected
    if scores is not None:
        assert len(scores) == count and all(math.isfinite(s) for s in scores)


@given(answer=st.one_of(st.tuples(JSON, st.integers(0, 6)), answers()))
@FUZZ
def test_any_json_answer_gives_one_finite_score_per_document_or_the_protocol_error(
    answer: tuple[Any, int],
) -> None:
    value, count = answer
    check_answer(orjson.dumps(value), count)


@given(body=st.one_of(st.binary(max_size=200), JSON.map(orjson.dumps).map(lambda b: b[:-1])))
@FUZZ
def test_any_bytes_answer_gives_scores_or_the_protocol_error(body: bytes) -> None:
    check_answer(body, 2)


@given(body=st.one_of(st.binary(max_size=200), JSON.map(orjson.dumps)))
@FUZZ
def test_error_bodies_are_read_without_raising(body: bytes) -> None:
    message = error_message(body)
    assert message is None or isinstance(message, str)
    wait = error_retry_after(body)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


def test_a_pydantic_detail_list_with_a_non_object_is_quoted() -> None:
    body = orjson.dumps({"detail": [{"msg": "field required"}, "and more", 3]})
    assert error_message(body) == "field required; and more; 3"
