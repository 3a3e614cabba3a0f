"""The compact text table and index the planner uses past HOLD documents: the same texts as a
list, the same positions as a dict."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.core import texts as texts_module
from rerank_cli.core.texts import TextIndex, TextTable
from tests.conftest import TEST_KEY, RunCli, api_options
from tests.server import RerankServer

text = st.one_of(
    st.sampled_from(["", "a", "b", "alpha", "é ü", "日本", "\U0001f600", "a\nb"]),
    st.text(max_size=8),
)


@settings(deadline=None, max_examples=300)
@given(
    groups=st.lists(st.lists(text, max_size=12), max_size=8),
    compact_after=st.integers(0, 8),
    run=st.integers(1, 5),
    appended=st.booleans(),
)
def test_the_table_holds_what_a_list_holds(
    groups: list[list[str]], compact_after: int, run: int, appended: bool
) -> None:
    """Texts added a group at a time (or one by one), compacted after some group, in runs of
    any length: every way of reading it gives the list back."""
    saved, texts_module.RUN = texts_module.RUN, run
    try:
        table = TextTable()
        expected: list[str] = []
        for number, group in enumerate(groups):
            if number == compact_after:
                table.compact()
            if appended:
                for item in group:
                    table.append(item)
            else:
                table.extend(group)
            expected += group
            assert len(table) == len(expected)
        assert list(table) == expected
        assert [table[i] for i in range(len(table))] == expected
        assert [table[-i] for i in range(1, len(table) + 1)] == [
            expected[-i] for i in range(1, len(expected) + 1)
        ]
        assert table[1:-1] == expected[1:-1]
        assert table[::2] == expected[::2]
        assert (table.listed is None) == (compact_after < len(groups))
        with pytest.raises(IndexError):
            table[len(expected)]
    finally:
        texts_module.RUN = saved


@settings(deadline=None, max_examples=300)
@given(
    held=st.lists(text, max_size=20),
    blocks=st.lists(st.lists(text, max_size=15), max_size=8),
    run=st.integers(1, 6),
)
def test_the_index_places_texts_as_a_dict_does(
    held: list[str], blocks: list[list[str]], run: int
) -> None:
    """A table started from distinct texts, then blocks placed through the index: each
    document's position and the table's texts are those a plain dict dedup gives."""
    saved, texts_module.RUN = texts_module.RUN, run
    try:
        first = list(dict.fromkeys(held))
        table = TextTable(first)
        table.compact()
        index = TextIndex(table)
        position_of = {item: position for position, item in enumerate(first)}
        for block in blocks:
            expected = [position_of.setdefault(item, len(position_of)) for item in block]
            assert index.place(block) == expected
        assert list(table) == list(position_of)
    finally:
        texts_module.RUN = saved


def test_texts_with_equal_hashes_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text hashes alike: the index compares the texts themselves."""

    class Same(str):
        def __hash__(self) -> int:
            return 7

    table = TextTable()
    table.compact()
    index = TextIndex(table)
    words = [Same(w) for w in ["a", "b", "a", "c", "b", "d"]]
    assert index.place(words) == [0, 1, 0, 2, 1, 3]
    assert index.place([Same("c"), Same("e")]) == [2, 4]
    assert list(table) == ["a", "b", "c", "d", "e"]


def test_the_index_grows_past_its_first_table() -> None:
    table = TextTable()
    table.compact()
    index = TextIndex(table)
    words = [f"w{i % 5000}" for i in range(12000)]
    assert index.place(words) == [i % 5000 for i in range(12000)]
    assert len(table) == 5000


def test_a_store_given_a_hold_compacts_past_it() -> None:
    from rerank_cli.core.documents import Document, DocumentStore, Source

    given = [Document(t, (t + "\n").encode(), Source("f", i + 1)) for i, t in enumerate("abcab")]
    store = DocumentStore(hold=2)
    store.extend(given[:2])
    assert store.held is not None
    store.extend(given[2:])
    assert store.held is None  # past the hold: compact
    assert list(store) == [Document(d.text, d.raw, d.source, index=i) for i, d in enumerate(given)]


def test_stdin_past_the_streaming_hold_writes_what_the_read_all_run_writes(
    cli: RunCli, server: RerankServer
) -> None:
    """More lines than are held whole while streaming (repeats across blocks): the texts are
    held compactly, and the output is that of the run that reads everything first."""
    from rerank_cli.core.documents import STREAM_HOLD

    count = STREAM_HOLD + 3000
    data = b"".join(b"line %d about module %d\n" % (i, i % 4000) for i in range(count))
    data += b"".join(b"line %d about module %d\n" % (i, i % 4000) for i in range(50))  # again
    common = ["module", *api_options(server), "--batch-size", "500", "-o", "jsonl"]
    env = {"GR_KEY": TEST_KEY}
    streamed = cli(*common, stdin=data, env=env)
    read_all = cli(*common, "--max-docs", "1000000", stdin=data, env=env)
    assert streamed.exit_code == read_all.exit_code == 0
    assert streamed.stdout == read_all.stdout
    assert streamed.stdout.count(b"\n") == count + 50
