from __future__ import annotations

from tests.conftest import RunCli


def test_lexical_ranks_the_matching_document_first(cli: RunCli) -> None:
    result = cli(
        "capital of France",
        "Bananas are yellow.",
        "Paris is the capital of France.",
        "--engine",
        "lexical",
    )
    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert [r["index"] for r in records] == [1, 0]
    assert records[0]["rank"] == 1
