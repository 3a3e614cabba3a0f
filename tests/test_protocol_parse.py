"""parse_response: the quick path for well-formed answers agrees with the item-by-item checks."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.engines.api.protocol import _well_formed, parse_response
from rerank_cli.errors import BadResponse


def reference(items: list[Any], count: int) -> list[float] | None:
    """The definition: one finite numeric score per document index, nothing else."""
    scores: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        index = item.get("index")
        score = item["relevance_score"] if "relevance_score" in item else item.get("score")
        if type(index) is not int or not 0 <= index < count or index in scores:
            return None
        if type(score) not in (int, float) or not math.isfinite(score):
            return None
        scores[index] = float(score)
    return [scores[i] for i in range(count)] if len(scores) == count else None


SCORE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[list[Any], int]:
    count = draw(st.integers(0, 8))
    indexes = draw(st.permutations(range(count)))
    key = draw(st.sampled_from(["relevance_score", "score"]))
    items: list[Any] = [
        {"index": i, key: draw(st.floats(-10, 10, allow_nan=False))} for i in indexes
    ]
    # Now and then, spoil it.
    for _ in range(draw(st.integers(0, 2))):
        spoil = draw(st.sampled_from(["drop", "dup", "index", "score", "key", "item", "extra"]))
        if not items:
            break
        at = draw(st.integers(0, len(items) - 1))
        item = items[at]
        if spoil == "drop":
            items.pop(at)
        elif spoil == "item":
            items[at] = draw(st.one_of(st.none(), st.integers(-9, 9), st.lists(st.integers(0, 9))))
        elif not isinstance(item, dict):
            continue
        elif spoil == "dup":
            items.append(dict(item))
        elif spoil == "index":
            item["index"] = draw(st.one_of(st.integers(-2, 10), st.booleans(), st.none()))
        elif spoil == "score":
            item[key] = draw(SCORE)
        elif spoil == "key":
            items[at] = {"index": item.get("index"), "score": item.get(key)}
        else:
            item["document"] = {"text": "ignored"}
    return items, count


@given(answers())
def test_quick_path_agrees_with_the_definition(answer: tuple[list[Any], int]) -> None:
    items, count = answer
    expected = reference(items, count)
    quick = _well_formed(items, count)
    assert quick is None or quick == expected
    body = orjson.dumps({"results": items})
    if expected is None:
        with pytest.raises(BadResponse):
            parse_response(body, count)
    else:
        assert parse_response(body, count) == expected


def test_a_well_formed_answer_takes_the_quick_path() -> None:
    items = [{"index": 1, "relevance_score": 0.5}, {"index": 0, "relevance_score": 2}]
    assert _well_formed(items, 2) == [2.0, 0.5]
    assert _well_formed([{"index": True, "score": 1.0}], 1) is None
