"""Invariants over random input: whatever the documents, batch size and concurrency, the output
is one permutation of the input — every record once, ordered by score, ties by input order.
Blank documents are never sent: the permutation is of the others, numbered without them."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rerank_cli.cli import main
from rerank_cli.engines.lexical import bm25
from rerank_cli.terminal import Environment
from tests.conftest import TEST_KEY
from tests.server import RerankServer, score

WORDS = ["capital", "of", "France", "Paris", "river", "yellow", "bananas", "the", "city"]

# Mostly words from a small vocabulary (so that overlaps, ties and duplicates happen), some
# arbitrary text (punctuation, other scripts, newlines, empty strings).
document = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
    st.text(max_size=30),
)
documents = st.lists(document, min_size=1, max_size=25)
query = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)


@pytest.fixture(scope="module")
def module_server() -> Iterator[RerankServer]:
    with RerankServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


_runs = itertools.count()


def rank(directory: Path, question: str, docs: list[str], *options: str) -> list[dict[str, Any]]:
    """Run the CLI in-process, documents as a JSON array on stdin; the JSON records out. Each
    run has a cache of its own, so that every example goes the whole way to the server."""
    run = next(_runs)
    environment = Environment(
        stdin=io.BytesIO(orjson.dumps(docs)),
        stdout=io.BytesIO(),
        stderr=io.StringIO(),
        env={
            "GR_KEY": TEST_KEY,
            "RERANK_CONFIG_DIR": str(directory / "config"),
            "RERANK_CACHE_DIR": str(directory / f"cache-{run}"),
        },
    )
    code = main(["rank", *options, "-F", "json", "-o", "jsonl", "--", question], environment)
    assert code == 0, environment.stderr.getvalue()  # type: ignore[attr-defined]
    out = environment.stdout.getvalue()  # type: ignore[attr-defined]
    return [orjson.loads(line) for line in out.splitlines()]


def not_blank(docs: list[str]) -> list[str]:
    """The documents that are sent: blank ones are skipped (an input of only blank documents
    has nothing to rank, exit 1: not this property's business)."""
    kept = [d for d in docs if d.strip()]
    assume(kept)
    return kept


def assert_permutation(records: list[dict[str, Any]], docs: list[str], scores: list[float]) -> None:
    indices = [r["index"] for r in records]
    assert sorted(indices) == list(range(len(docs)))
    assert indices == sorted(range(len(docs)), key=lambda i: (-scores[i], i))
    assert [r["text"] for r in records] == [docs[i] for i in indices]
    assert [r["rank"] for r in records] == list(range(1, len(docs) + 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    question=query,
    docs=documents,
    batch_size=st.integers(1, 8),
    concurrency=st.integers(1, 6),
)
def test_api_ranking_is_one_permutation_whatever_the_cut(
    module_server: RerankServer,
    module_dir: Path,
    question: str,
    docs: list[str],
    batch_size: int,
    concurrency: int,
) -> None:
    options = ("--base-url", module_server.base_url, "--wait-cold", "0")
    cut = ("--batch-size", str(batch_size), "-j", str(concurrency))
    kept = not_blank(docs)
    records = rank(module_dir, question, docs, *options, *cut)
    assert_permutation(records, kept, [score(question, d) for d in kept])
    assert [r["score"] for r in records] == [score(question, kept[r["index"]]) for r in records]


@settings(max_examples=40, deadline=None)
@given(
    question=query,
    docs=documents,
    batch_size=st.integers(1, 8),
    concurrency=st.integers(1, 6),
)
def test_lexical_ranking_is_one_permutation(
    module_dir: Path, question: str, docs: list[str], batch_size: int, concurrency: int
) -> None:
    cut = ("--batch-size", str(batch_size), "-j", str(concurrency))
    kept = not_blank(docs)
    records = rank(module_dir, question, docs, "--engine", "lexical", *cut)
    # BM25 scores each distinct text once, over the distinct texts (the pipeline dedups).
    unique = list(dict.fromkeys(kept))
    by_text = dict(zip(unique, bm25(question, unique), strict=True))
    assert_permutation(records, kept, [by_text[d] for d in kept])
    assert all(0.0 <= r["score"] <= 1.0 for r in records)
