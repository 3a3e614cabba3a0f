"""``-F grep``: each shape, each ambiguity case of the module docstring's rule, context
attachment, groups, colour; hypothesis: never raises, round-trips what it accepts."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError
from rerank_cli.sources import ReadOptions, ReadReport, ansi, grep, is_binary, read
from rerank_cli.sources.records import chomp, split_lines, strip_bom


def parse(data: bytes, root: Path | None = None, **options: Any) -> list[Document]:
    opts = ReadOptions(format="grep", grep_root=str(root) if root else None, **options)
    return list(read(data, "<stdin>", opts, ReadReport()))


def where(docs: list[Document]) -> list[tuple[Any, Any, str]]:
    return [(d.fields["path"], d.fields["line"], d.text) for d in docs]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("a.py", "weird:name.txt", "x-12-y.txt", "dir with spaces/b c.txt", "12"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    return tmp_path


# --- shapes -----------------------------------------------------------------------------------


def test_path_line_text(root: Path) -> None:
    docs = parse(b"a.py:3:def f():\ndir with spaces/b c.txt:10:x = 1\n", root)
    assert where(docs) == [("a.py", 3, "def f():"), ("dir with spaces/b c.txt", 10, "x = 1")]
    assert [str(d.source) for d in docs] == ["a.py:3", "dir with spaces/b c.txt:10"]
    assert "column" not in docs[0].fields


def test_path_line_column_text(root: Path) -> None:
    docs = parse(b"a.py:3:5:def f():\na.py:4:1:x: 1\n", root)
    assert where(docs) == [("a.py", 3, "def f():"), ("a.py", 4, "x: 1")]
    assert [d.fields["column"] for d in docs] == [5, 1]


def test_path_text_needs_the_path_on_disk(root: Path, tmp_path: Path) -> None:
    data = b"a.py:def f(): pass\nweird:name.txt:key: value\n"
    assert where(parse(data, root)) == [
        ("a.py", None, "def f(): pass"),
        ("weird:name.txt", None, "key: value"),
    ]
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    # Not on disk: `key: value` lines stay text (a guessed path would eat words).
    assert where(parse(data, elsewhere)) == [
        (None, None, "a.py:def f(): pass"),
        (None, None, "weird:name.txt:key: value"),
    ]


def test_line_text_and_line_column_text(tmp_path: Path) -> None:
    assert where(parse(b"3:a:1:b\n10:plain\n", tmp_path)) == [
        (None, 3, "a:1:b"),
        (None, 10, "plain"),
    ]
    docs = parse(b"3:7:alpha\n4-beta\n5:1:gamma\n", tmp_path)
    assert where(docs) == [(None, 3, "alpha"), (None, 5, "gamma")]
    assert docs[0].raw == b"3:7:alpha\n4-beta\n"
    assert [d.fields.get("column") for d in docs] == [7, 1]
    # With no path, the source names the input and the line of the searched file.
    assert str(docs[0].source) == "<stdin>:3"


def test_text_only_single_file_without_numbers(tmp_path: Path) -> None:
    docs = parse(b"a:1:b looks like a prefix\nplain text\nmore: text\n", tmp_path)
    assert where(docs) == [
        (None, None, "a:1:b looks like a prefix"),
        (None, None, "plain text"),
        (None, None, "more: text"),
    ]
    assert [d.source.line for d in docs if d.source] == [1, 2, 3]


def test_log_lines_with_dates_are_text_not_context(tmp_path: Path) -> None:
    data = b"2024-01-02 12:30 started\n2024-01-02 12:31 failed\n"
    assert [d.text for d in parse(data, tmp_path)] == data.decode().splitlines()


# --- the ambiguity rule ---------------------------------------------------------------------


def test_colon_in_path_is_resolved_on_disk(root: Path) -> None:
    docs = parse(b"weird:name.txt:3:TODO: fix 1:2:3\n", root)
    assert where(docs) == [("weird:name.txt", 3, "TODO: fix 1:2:3")]


def test_text_like_a_prefix_keeps_the_leftmost_path_on_disk(root: Path) -> None:
    assert where(parse(b"a.py:7:# TODO:1:2:3 x\n", root)) == [("a.py", 7, "# TODO:1:2:3 x")]


def test_dash_digits_in_path_on_disk(root: Path) -> None:
    docs = parse(b"x-12-y.txt-1-a-12-b\nx-12-y.txt:2:TODO dash\nx-12-y.txt-3-c-3-d\n", root)
    assert where(docs) == [("x-12-y.txt", 2, "TODO dash")]
    assert docs[0].raw.count(b"\n") == 3


def test_dash_digits_in_path_without_disk_uses_the_neighbouring_match(tmp_path: Path) -> None:
    docs = parse(b"x-12-y.txt-1-a-12-b\nx-12-y.txt:2:TODO dash\nx-12-y.txt-3-c\n", tmp_path)
    assert where(docs) == [("x-12-y.txt", 2, "TODO dash")]
    assert docs[0].raw == b"x-12-y.txt-1-a-12-b\nx-12-y.txt:2:TODO dash\nx-12-y.txt-3-c\n"


def test_context_line_with_time_in_it_stays_context_without_disk(tmp_path: Path) -> None:
    data = b"src/a.py:1:start\nsrc/a.py-2-at 10:30:00 ok\nsrc/a.py:3:end\n"
    docs = parse(data, tmp_path)
    assert where(docs) == [("src/a.py", 1, "start"), ("src/a.py", 3, "end")]
    assert docs[0].raw == b"src/a.py:1:start\nsrc/a.py-2-at 10:30:00 ok\n"


def test_without_disk_the_leftmost_split_wins(tmp_path: Path) -> None:
    data = b"src/a.py:3:ratio x:4:y\nsrc/b.py:5:z\n"
    assert where(parse(data, tmp_path)) == [("src/a.py", 3, "ratio x:4:y"), ("src/b.py", 5, "z")]


def test_on_disk_the_leftmost_existing_path_wins(tmp_path: Path) -> None:
    for name in ("a", "a:1:b"):
        (tmp_path / name).write_text("")
    assert where(parse(b"a:1:b:2:text\n", tmp_path)) == [("a", 1, "b:2:text")]


def test_windows_drive_letter_is_part_of_the_path(tmp_path: Path) -> None:
    data = b"C:\\src\\a.py:12:x = 1\nC:/src/b.py:3:y\n"
    assert where(parse(data, tmp_path)) == [("C:\\src\\a.py", 12, "x = 1"), ("C:/src/b.py", 3, "y")]


def test_digits_only_path_is_a_line_number_unless_it_exists(root: Path, tmp_path: Path) -> None:
    data = b"12:5:alpha\n12:7:beta\n"
    assert where(parse(data, root / "dir with spaces")) == [(None, 12, "alpha"), (None, 12, "beta")]
    assert where(parse(data, root)) == [("12", 5, "alpha"), ("12", 7, "beta")]


def test_nul_ends_the_path(tmp_path: Path) -> None:
    data = b"we:ird-1-x.txt\x003:a:1:b\nwe:ird-1-x.txt\x004-ctx\nother\x00no numbers\n"
    docs = parse(data, tmp_path)
    assert where(docs)[0] == ("we:ird-1-x.txt", 3, "a:1:b")
    assert docs[0].raw == b"we:ird-1-x.txt\x003:a:1:b\nwe:ird-1-x.txt\x004-ctx\n"


@pytest.mark.parametrize("name", [b"<stdin>", b"(standard input)"])
def test_stdin_names_count_as_existing(tmp_path: Path, name: bytes) -> None:
    assert where(parse(name + b":3:x:1:y\n", tmp_path)) == [(name.decode(), 3, "x:1:y")]


def test_a_stray_line_in_grep_output_becomes_text(root: Path) -> None:
    docs = parse(b"a.py:1:one\nBinary file bin.dat matches\na.py:2:two\n", root)
    assert where(docs) == [
        ("a.py", 1, "one"),
        (None, None, "Binary file bin.dat matches"),
        ("a.py", 2, "two"),
    ]


def test_huge_numbers_do_not_crash(root: Path) -> None:
    data = b"a.py:" + b"9" * 5000 + b":x\n"
    assert [d.raw for d in parse(data, root)] == [data]


# --- context, groups, colour, plain bytes -----------------------------------------------------


GROUPS = (
    b"a.py-1-import os\n"
    b"a.py:2:first match\n"
    b"a.py-3-between\n"
    b"a.py-4-between too\n"
    b"a.py:5:second match\n"
    b"a.py-6-after\n"
    b"--\n"
    b"x-12-y.txt:9:third\n"
)


def test_context_attaches_to_the_nearest_match_earlier_on_a_tie(root: Path) -> None:
    docs = parse(GROUPS, root)
    assert [d.text for d in docs] == ["first match", "second match", "third"]
    assert docs[0].raw == b"a.py-1-import os\na.py:2:first match\na.py-3-between\n"
    assert docs[1].raw == b"a.py-4-between too\na.py:5:second match\na.py-6-after\n"
    assert all(d.separator == b"--\n" for d in docs)
    joined = b"".join(d.raw for d in docs)
    assert Counter(joined.splitlines()) == Counter(GROUPS.splitlines()) - Counter([b"--"])


def test_no_separator_without_context(root: Path) -> None:
    docs = parse(b"a.py:1:x\na.py:2:y\n", root)
    assert all(d.separator == b"" for d in docs)


def test_orphan_context_lines_are_documents_of_their_own(root: Path) -> None:
    docs = parse(b"a.py-1-alone\n--\na.py:5:match\n", root)
    assert where(docs) == [("a.py", 1, "alone"), ("a.py", 5, "match")]


def test_group_makes_a_context_group_one_document(root: Path) -> None:
    docs = parse(GROUPS, root, group=True)
    assert [d.raw for d in docs] == [GROUPS.split(b"--\n")[0], b"x-12-y.txt:9:third\n"]
    assert docs[0].text.splitlines()[1] == "first match"
    assert where(docs)[0][:2] == ("a.py", 2)  # the group's first match


def test_group_without_context_splits_where_lines_do_not_follow(root: Path) -> None:
    docs = parse(b"a.py:1:x\na.py:2:y\na.py:7:z\nx-12-y.txt:8:w\n", root, group=True)
    assert [d.text for d in docs] == ["x\ny", "z", "w"]
    assert all(d.separator == b"--\n" for d in docs)


def test_colour_is_stripped_for_parsing_and_scoring_and_kept_in_raw(root: Path) -> None:
    grep_colour = (
        b"\x1b[35m\x1b[Ka.py\x1b[m\x1b[K\x1b[36m\x1b[K:\x1b[m\x1b[K\x1b[32m\x1b[K3\x1b[m\x1b[K"
        b"\x1b[36m\x1b[K:\x1b[m\x1b[Kx = \x1b[01;31m\x1b[KTODO\x1b[m\x1b[K\n"
        b"\x1b[36m\x1b[K--\x1b[m\x1b[K\n"
        b"\x1b[0m\x1b[35mweird:name.txt\x1b[0m:\x1b[0m\x1b[32m4\x1b[0m:"
        b"\x1b[0m\x1b[1m\x1b[31mTODO\x1b[0m y\n"
    )
    docs = parse(grep_colour, root)
    assert where(docs) == [("a.py", 3, "x = TODO"), ("weird:name.txt", 4, "TODO y")]
    assert docs[0].raw == grep_colour.splitlines(keepends=True)[0]
    # The separator printed between documents is the input's own, colour and all.
    assert docs[0].separator == b"\x1b[36m\x1b[K--\x1b[m\x1b[K\n"


def test_crlf_and_invalid_utf8(root: Path) -> None:
    report = ReadReport()
    opts = ReadOptions(format="grep", grep_root=str(root))
    docs = list(read(b"a.py:1:caf\xe9\r\na.py:2:ok\r\n", "in", opts, report))
    assert [d.text for d in docs] == ["caf\ufffd", "ok"]
    assert docs[0].raw == b"a.py:1:caf\xe9\r\n"
    assert report.warnings == ["in: invalid UTF-8 replaced with U+FFFD"]


def test_with_path_prepends_path_and_line(root: Path) -> None:
    docs = parse(b"a.py:3:x\na.py:4:y\n", root, with_path=True)
    assert [d.text for d in docs] == ["a.py:3: x", "a.py:4: y"]
    assert [d.text for d in parse(b"a.py:x\n", root, with_path=True)] == ["a.py: x"]
    assert [d.text for d in parse(b"3:x\n", root, with_path=True)] == ["x"]  # no path: as is


def test_blank_lines_and_empty_input(root: Path) -> None:
    assert parse(b"", root) == []
    assert parse(b"\n  \n--\n", root) == []
    assert where(parse(b"a.py:3:\n", root)) == [("a.py", 3, "")]  # a match on an empty line


# --- hypothesis -------------------------------------------------------------------------------

NAMES = [
    "a.py",
    "weird:name.txt",
    "x-12-y.txt",
    "dir with spaces/b c.txt",
    "12",
    "C:\\w.py",
    "n-1-.md",
]


@pytest.fixture(scope="module")
def named_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("names")
    for name in NAMES:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("")
    return base


# Bytes made of the pieces grep output is made of, so that the parser's branches get exercised.
PIECES = [*(n.encode() for n in NAMES), b":", b"-", b"\0", b"\n", b"\r\n", b"--\n", b"12", b"3",
          b" ", b"x", b"\x1b[32m", b"\x1b[m\x1b[K", b"\xff", b"<stdin>", b"C:\\"]  # fmt: skip
GREP_LIKE = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@given(
    data=st.one_of(st.binary(max_size=400), GREP_LIKE),
    group=st.booleans(),
    with_path=st.booleans(),
)
@settings(max_examples=300)
def test_never_raises_and_keeps_every_line(
    named_root: Path, data: bytes, group: bool, with_path: bool
) -> None:
    if is_binary(data, "grep"):  # refused before parsing: a NUL that ends no path
        with pytest.raises(InputError, match="binary file"):
            parse(data, named_root, group=group, with_path=with_path)
        options = ReadOptions(grep_root=str(named_root), group=group, with_path=with_path)
        docs = list(grep.read(data, "<stdin>", options, ReadReport()))  # the parser still copes
    else:
        docs = parse(data, named_root, group=group, with_path=with_path)
    kept = b"".join(d.raw for d in docs)
    # Every line but separators and blank lines (colour codes aside) is in exactly one
    # document, unchanged.
    wanted = [
        line
        for _, line in split_lines(strip_bom(data))
        if ansi.strip(chomp(line)).strip() and ansi.strip(chomp(line)) != b"--"
    ]
    assert Counter(split_lines_of(kept)) == Counter(wanted)


def split_lines_of(data: bytes) -> list[bytes]:
    return [line for _, line in split_lines(data)]


TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0\x1b\x85\u2028\u2029"),
    max_size=30,
)


@st.composite
def grep_output(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, int, int | None, str]]]:
    column = draw(st.booleans())
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMES),
                st.integers(1, 10**6),
                st.integers(1, 500) if column else st.none(),
                TEXT.filter(lambda t: column or not re.match(r"\d+:", t)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    sep = draw(st.sampled_from([":", "\0"]))
    lines = []
    for path, line, col, text in rows:
        prefix = f"{path}{sep}{line}:" + (f"{col}:" if col is not None else "")
        lines.append((prefix + text + "\n").encode())
    return b"".join(lines), rows


@given(case=grep_output())
@settings(max_examples=200)
def test_round_trips_what_it_accepts(named_root: Path, case: tuple[bytes, list[Any]]) -> None:
    data, rows = case
    docs = parse(data, named_root)
    assert [
        (d.fields["path"], d.fields["line"], d.fields.get("column"), d.text) for d in docs
    ] == rows
    assert b"".join(d.raw for d in docs) == data
