"""The table's "best chunk" column: which line of the chunk tells most."""

from __future__ import annotations

import pytest

from rerank_cli.writers.file_ranking import telling_line

QUERY = "where are retries configured"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the most query words wins, whatever comes first
        (")\n  retries = 3\n  configured retries here\n", "configured retries here"),
        # a tie goes to the word rarer in the chunk (retries is everywhere), then the earlier
        ("retries a\nretries b\nconfig_value = 1\nretries c\n", "config_value = 1"),
        ("retries a\nretries b\n", "retries a"),
        # words are compared without case, endings or the query's common words
        ("where are they\nRETRIED once\n", "RETRIED once"),
        # nothing shared: the longest line with letters; no letters at all: the first line
        ("{\n  x = 1\n  return value\n}\n", "return value"),
        (")\n}\n", ")"),
        ("\n \n", ""),
    ],
)
def test_telling_line(text: str, expected: str) -> None:
    assert telling_line(text, QUERY) == expected


def test_a_query_of_common_words_only_falls_back_to_the_longest_line() -> None:
    assert telling_line("{\n  where are they\n  x\n", "where are") == "where are they"
