"""The score cache (rerank_cli/cache.py) and the engine that puts it in front of another
(rerank_cli/engines/cached.py): keys, hits and misses, TTL, modes, per-batch writes, and every
way the cache file can be unusable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import zlib
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_cli.engines.interface import ScoreCallback, Stats
from rerank_cli.store import cached_engine as cached_engine_module
from rerank_cli.store import score_cache as cache_module
from rerank_cli.store.cached_engine import CachedEngine
from rerank_cli.store.score_cache import (
    DAY,
    FILE_NAME,
    Scope,
    ScoreCache,
    endpoint_of,
    make_keys,
    open_cache,
    question_id,
)
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer
from tests.server import score as server_score

SCOPE = Scope.for_api("https://gigarouter.ai/v1", "Qwen/Qwen3-Reranker-0.6B")
QUERY = "rotate signing keys"
QUESTION = question_id(SCOPE, QUERY)
TEXTS = [f"document {i}" for i in range(10)]


def true_score(query: str, text: str, model: str = "m") -> float:
    return (zlib.crc32(f"{model}\0{query}\0{text}".encode()) % 10_000) / 10_000


class SpyEngine:
    """A pointwise engine that records every text it is asked to score."""

    name = "spy"

    def __init__(
        self,
        batch_size: int = 3,
        fail_after_batches: int | None = None,
        report: bool = True,
        model: str = "m",
    ) -> None:
        self.batch_size = batch_size
        self.fail_after_batches = fail_after_batches
        self.report = report
        self.model = model
        self.sent: list[str] = []
        self.calls = 0

    async def score(
        self, query: str, texts: Sequence[str], on_scores: ScoreCallback | None = None
    ) -> list[float]:
        self.calls += 1
        scores = [true_score(query, text, self.model) for text in texts]
        for number, start in enumerate(range(0, len(texts), self.batch_size)):
            if number == self.fail_after_batches:
                raise ConnectionError("the network went away")
            await asyncio.sleep(0)
            batch = list(range(start, min(start + self.batch_size, len(texts))))
            self.sent += [texts[i] for i in batch]
            if self.report and on_scores is not None:
                on_scores(batch, [scores[i] for i in batch])
        return scores


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / FILE_NAME


def open_store(path: Path, warnings: list[str], clock: Clock | None = None) -> ScoreCache:
    store = ScoreCache.open(path, warnings.append, clock or Clock())
    assert store is not None, warnings
    return store


def run(
    engine: CachedEngine,
    texts: Sequence[str] = TEXTS,
    query: str = QUERY,
    reported: list[tuple[int, float]] | None = None,
) -> list[float]:
    def on_scores(positions: Sequence[int], scores: Sequence[float]) -> None:
        if reported is not None:
            reported.extend(zip(positions, scores, strict=True))

    return asyncio.run(engine.score(query, texts, on_scores))


def entries(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM scores").fetchone()[0])


# ---------------------------------------------------------------------------- keys

FIELDS = ("endpoint", "model", "instruction", "instruction_mode", "query", "text")


def key_of(parts: dict[str, str]) -> tuple[int, int]:
    scope = Scope(
        parts["endpoint"], parts["model"], parts["instruction"], parts["instruction_mode"]
    )
    return make_keys(scope, parts["query"], [parts["text"]])[0]


@pytest.mark.parametrize("changed", FIELDS)
def test_every_component_changes_the_key(changed: str) -> None:
    parts = dict.fromkeys(FIELDS, "x")
    other = {**parts, changed: "y"}
    assert key_of(parts) != key_of(other)


@given(
    st.tuples(*[st.text(max_size=6) for _ in FIELDS]),
    st.tuples(*[st.text(max_size=6) for _ in FIELDS]),
)
def test_keys_are_equal_exactly_when_all_components_are(
    a: tuple[str, ...], b: tuple[str, ...]
) -> None:
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    assert (
        key_of(dict(zip(FIELDS, a, strict=True))) == key_of(dict(zip(FIELDS, b, strict=True)))
    ) == (a == b)


def test_shifting_text_between_components_changes_the_key() -> None:
    base = dict.fromkeys(FIELDS, "")
    assert key_of({**base, "query": "ab", "text": "c"}) != key_of(
        {**base, "query": "a", "text": "bc"}
    )
    assert key_of({**base, "model": "a\0", "instruction": ""}) != key_of(
        {**base, "model": "a", "instruction": "\0"}
    )


def test_undecodable_text_kept_as_surrogates_still_gets_a_key() -> None:
    keys = make_keys(SCOPE, QUERY, ["caf\udce9", "caf\udce8"])
    assert keys[0] != keys[1]


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://gigarouter.ai/v1", "gigarouter.ai/v1"),
        ("https://GigaRouter.AI/v1/", "gigarouter.ai/v1"),
        ("http://gigarouter.ai/v1", "gigarouter.ai/v1"),
        ("http://127.0.0.1:8080/v1", "127.0.0.1:8080/v1"),
        ("https://user:s3cret-key@host.example/api?key=s3cret-key", "host.example/api"),
    ],
)
def test_endpoint_is_host_and_path_without_credentials(url: str, endpoint: str) -> None:
    assert endpoint_of(url) == endpoint


def test_same_endpoint_different_path_is_a_different_key() -> None:
    a = Scope.for_api("https://h.example/v1", "m")
    b = Scope.for_api("https://h.example/v2", "m")
    assert make_keys(a, QUERY, ["t"]) != make_keys(b, QUERY, ["t"])


# ---------------------------------------------------------------------------- the store


@pytest.fixture(params=["json_each", "chunks"])
def fetcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Lookups both ways: one JSON array (SQLite ≥ 3.38) and chunks of placeholders (older)."""
    if request.param == "chunks":
        monkeypatch.setattr(cache_module, "_has_json_each", lambda: False)
    return str(request.param)


def test_lookup_returns_what_was_stored_and_none_for_the_rest(
    db_path: Path, warnings: list[str], fetcher: str
) -> None:
    keys = make_keys(SCOPE, QUERY, TEXTS)
    with open_store(db_path, warnings) as store:
        store.store(keys[:4], [0.1, 0.2, 0.3, 0.4], QUESTION)
        assert store.lookup(keys) == [0.1, 0.2, 0.3, 0.4] + [None] * 6
    with open_store(db_path, warnings) as store:  # and it survives reopening
        assert store.lookup(keys[:4]) == [0.1, 0.2, 0.3, 0.4]
    assert warnings == []


def test_lookup_over_many_chunks(db_path: Path, warnings: list[str], fetcher: str) -> None:
    texts = [f"t{i}" for i in range(cache_module.LOOKUP_CHUNK * 3 + 7)]
    keys = make_keys(SCOPE, QUERY, texts)
    scores = [i / len(texts) for i in range(len(texts))]
    with open_store(db_path, warnings) as store:
        store.store(keys[::2], scores[::2], QUESTION)
        found = store.lookup(keys)
    assert found == [s if i % 2 == 0 else None for i, s in enumerate(scores)]


def test_a_row_id_collision_with_another_checksum_is_a_miss(
    db_path: Path, warnings: list[str], fetcher: str
) -> None:
    with open_store(db_path, warnings) as store:
        store.store([(42, 1)], [0.5], QUESTION)
        assert store.lookup([(42, 2), (42, 1)]) == [None, 0.5]


def test_extreme_row_ids_and_repeated_keys(
    db_path: Path, warnings: list[str], fetcher: str
) -> None:
    low, high = -(2**63), 2**63 - 1  # a row id is any signed 64-bit integer
    with open_store(db_path, warnings) as store:
        store.store([(low, 1), (high, 2), (0, 3)], [0.25, 0.5, 0.75], QUESTION)
        keys = [(high, 2), (low, 1), (high, 2), (low, 9), (7, 7), (0, 3)]
        assert store.lookup(keys) == [0.5, 0.25, 0.5, None, None, 0.75]
    assert warnings == []


def test_scores_round_trip_exactly(db_path: Path, warnings: list[str], fetcher: str) -> None:
    values = [0.1 + 0.2, 1e-300, -3.5, 0.0, 0.9999999999999999]
    keys = make_keys(SCOPE, QUERY, [str(v) for v in values])
    with open_store(db_path, warnings) as store:
        store.store(keys, values, QUESTION)
        assert store.lookup(keys) == values


def test_nan_is_not_cached(db_path: Path, warnings: list[str], fetcher: str) -> None:
    keys = make_keys(SCOPE, QUERY, ["a", "b"])
    with open_store(db_path, warnings) as store:
        store.store(keys, [float("nan"), 0.5], QUESTION)
        assert store.lookup(keys) == [None, 0.5]
    assert warnings == []


def test_ttl_makes_old_entries_misses(
    db_path: Path, warnings: list[str], clock: Clock, fetcher: str
) -> None:
    keys = make_keys(SCOPE, QUERY, ["old", "new"])
    with open_store(db_path, warnings, clock) as store:
        store.store(keys[:1], [0.1], QUESTION)
        clock.now += 3 * DAY
        store.store(keys[1:], [0.2], QUESTION)
        assert store.lookup(keys) == [0.1, 0.2]
        assert store.lookup(keys, ttl_days=2) == [None, 0.2]
        assert store.lookup(keys, ttl_days=4) == [0.1, 0.2]
        assert store.lookup(keys, ttl_days=0) == [None, 0.2]  # stored this very second


def test_storing_again_replaces_the_score_and_the_time(
    db_path: Path, warnings: list[str], clock: Clock
) -> None:
    keys = make_keys(SCOPE, QUERY, ["a"])
    with open_store(db_path, warnings, clock) as store:
        store.store(keys, [0.1], QUESTION)
        clock.now += 10 * DAY
        store.store(keys, [0.7], QUESTION)
        assert store.lookup(keys, ttl_days=1) == [0.7]
        assert store.entries() == 1


def test_the_file_holds_no_text_and_no_key(db_path: Path, warnings: list[str]) -> None:
    secret = "gr-live-0123456789abcdef"
    scope = Scope.for_api(f"https://user:{secret}@gigarouter.ai/v1?key={secret}", "m")
    engine = CachedEngine(SpyEngine(), open_store(db_path, warnings), scope)
    run(engine, ["confidential memo"], query="secret plans")
    assert engine.cache is not None
    engine.cache.close()
    data = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.is_file())
    for needle in (secret, "confidential memo", "secret plans", "gigarouter"):
        assert needle.encode() not in data


def test_record_run_and_last_run(db_path: Path, warnings: list[str], clock: Clock) -> None:
    with open_store(db_path, warnings, clock) as store:
        assert store.last_run() is None
        store.record_run(hits=7, misses=3, sent=2)
        last = store.last_run()
    assert last is not None
    assert (last.hits, last.misses, last.sent, last.at) == (7, 3, 2, clock.now)


def schema_1_file(path: Path, texts: Sequence[str], score: float) -> None:
    """A cache as rerank wrote it before questions were noted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE scores (id INTEGER PRIMARY KEY, checksum INTEGER NOT NULL,"
            " score REAL NOT NULL, stored REAL NOT NULL);"
            "CREATE INDEX scores_stored ON scores (stored);"
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "PRAGMA user_version = 1;"
        )
        rows = [(i, c, score, 1.0) for i, c in make_keys(SCOPE, QUERY, texts)]
        conn.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", rows)
        conn.commit()


def test_a_question_never_asked_needs_no_lookup(
    db_path: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(db_path, warnings) as store:
        store.store(
            make_keys(SCOPE, "another query", TEXTS),
            [0.5] * 10,
            question_id(SCOPE, "another query"),
        )
        assert not store.may_have(QUESTION)
        assert store.may_have(question_id(SCOPE, "another query"))
        looked: list[int] = []
        real = store.lookup

        def counted(keys: Sequence[tuple[int, int]], ttl: float | None = None) -> object:
            looked.append(1)
            return real(keys, ttl)

        monkeypatch.setattr(store, "lookup", counted)
        spy = SpyEngine()
        assert run(CachedEngine(spy, store, SCOPE)) == [true_score(QUERY, t) for t in TEXTS]
        assert looked == [] and spy.sent == TEXTS
        assert store.may_have(QUESTION)  # noted with the scores
        again = SpyEngine()
        assert run(CachedEngine(again, store, SCOPE)) == [true_score(QUERY, t) for t in TEXTS]
        assert looked == [1] and again.sent == []


@pytest.mark.parametrize("chunk", [1, 3, 10_000])
def test_keys_hashed_meanwhile_or_on_landing_store_every_score_findably(
    cached: ScoreCache, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    # A new question's keys are hashed while the requests are out; a batch landing before
    # its keys are ready hashes them itself. Either way, a rerun finds every score.
    monkeypatch.setattr(cached_engine_module, "HASH_CHUNK", chunk)
    first = SpyEngine(batch_size=2)
    assert run(CachedEngine(first, cached, SCOPE)) == [true_score(QUERY, t) for t in TEXTS]
    again = SpyEngine()
    assert run(CachedEngine(again, cached, SCOPE)) == [true_score(QUERY, t) for t in TEXTS]
    assert first.sent == TEXTS and again.sent == []


def test_a_write_that_fails_unexpectedly_is_not_lost_on_the_writer_thread(
    cached: ScoreCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug in the cache")

    monkeypatch.setattr(cached, "store", broken)
    with pytest.raises(RuntimeError, match="a bug in the cache"):
        run(CachedEngine(SpyEngine(), cached, SCOPE))


def test_a_file_from_before_questions_is_looked_up_until_cleared(
    db_path: Path, warnings: list[str]
) -> None:
    schema_1_file(db_path, TEXTS[:4], 0.25)
    with open_store(db_path, warnings) as store:
        assert store.may_have(question_id(SCOPE, "never asked"))  # it cannot say
        spy = SpyEngine()
        scores = run(CachedEngine(spy, store, SCOPE))
        assert scores[:4] == [0.25] * 4  # paid for under schema 1: not paid again
        assert spy.sent == TEXTS[4:]
        store.clear()
        assert not store.may_have(question_id(SCOPE, "never asked"))
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert warnings == []


def test_an_empty_file_from_before_questions_is_complete(
    db_path: Path, warnings: list[str]
) -> None:
    schema_1_file(db_path, [], 0.0)
    with open_store(db_path, warnings) as store:
        assert not store.may_have(QUESTION)


def test_clearing_by_age_keeps_what_is_left_findable(
    db_path: Path, warnings: list[str], clock: Clock
) -> None:
    with open_store(db_path, warnings, clock) as store:
        run(CachedEngine(SpyEngine(), store, SCOPE))
        clock.now += 10 * DAY
        run(CachedEngine(SpyEngine(), store, SCOPE), TEXTS[:2], query="other")
        assert store.clear(older_than_days=5) == 10
        spy = SpyEngine()
        run(CachedEngine(spy, store, SCOPE), TEXTS[:2], query="other")
        assert spy.sent == []  # its question is still noted, and its scores found


def test_clear_by_age_and_all(db_path: Path, warnings: list[str], clock: Clock) -> None:
    keys = make_keys(SCOPE, QUERY, TEXTS)
    with open_store(db_path, warnings, clock) as store:
        store.store(keys[:3], [0.1] * 3, QUESTION)
        clock.now += 5 * DAY
        store.store(keys[3:], [0.2] * 7, QUESTION)
        assert store.clear(older_than_days=6) == 0
        assert store.clear(older_than_days=4) == 3
        assert store.lookup(keys[:4]) == [None, None, None, 0.2]
        assert store.clear() == 7
        assert store.entries() == 0


# ---------------------------------------------------------------------------- the engine


@pytest.fixture
def cached(db_path: Path, warnings: list[str], clock: Clock) -> ScoreCache:
    return open_store(db_path, warnings, clock)


def test_second_run_sends_nothing_and_returns_the_same_scores(
    cached: ScoreCache, warnings: list[str]
) -> None:
    first_spy, second_spy = SpyEngine(), SpyEngine()
    stats = Stats()
    first = run(CachedEngine(first_spy, cached, SCOPE, stats=stats))
    assert first_spy.sent == TEXTS
    assert (stats.cache_hits, stats.cache_misses) == (0, 10)
    stats = Stats()
    second = run(CachedEngine(second_spy, cached, SCOPE, stats=stats))
    assert second_spy.sent == []
    assert second_spy.calls == 0
    assert second == first == [true_score(QUERY, t) for t in TEXTS]
    assert (stats.cache_hits, stats.cache_misses) == (10, 0)
    assert warnings == []


def test_pending_then_score_looks_up_once(
    cached: ScoreCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[:4])
    lookups: list[int] = []
    real = cached.lookup

    def counted(keys: Sequence[tuple[int, int]], ttl_days: float | None = None) -> list[object]:
        lookups.append(len(keys))
        return real(keys, ttl_days)  # type: ignore[return-value]

    monkeypatch.setattr(cached, "lookup", counted)
    spy = SpyEngine()
    engine = CachedEngine(spy, cached, SCOPE)
    texts = list(TEXTS)
    assert engine.pending(QUERY, texts) == list(range(4, 10))
    assert run(engine, texts) == [true_score(QUERY, t) for t in TEXTS]
    assert lookups == [10]  # the budget check's lookup served the run
    assert spy.sent == TEXTS[4:]
    run(engine, texts)  # a later run looks again (and finds everything)
    assert lookups == [10, 10]
    engine.pending(QUERY, texts)
    run(engine, list(texts))  # another list (or query) is not the one looked up
    assert lookups == [10, 10, 10, 10]


def test_only_the_misses_are_sent(cached: ScoreCache) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[:6])
    spy = SpyEngine()
    scores = run(CachedEngine(spy, cached, SCOPE), TEXTS)
    assert spy.sent == TEXTS[6:]
    assert scores == [true_score(QUERY, t) for t in TEXTS]


@pytest.mark.parametrize(
    "change",
    [
        {"query": "another query"},
        {"scope": Scope.for_api("https://gigarouter.ai/v1", "other-model")},
        {"scope": Scope.for_api("https://gigarouter.ai/v1", SCOPE.model, "Judge relevance")},
        {"scope": Scope.for_api("https://gigarouter.ai/v1", SCOPE.model, "", "system")},
        {"scope": Scope.for_api("http://127.0.0.1:9000/v1", SCOPE.model)},
    ],
    ids=["query", "model", "instruction", "instruction-mode", "endpoint"],
)
def test_a_changed_component_misses(cached: ScoreCache, change: dict[str, object]) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE))
    scope = change.get("scope", SCOPE)
    assert isinstance(scope, Scope)
    query = str(change.get("query", QUERY))
    spy = SpyEngine()
    run(CachedEngine(spy, cached, scope), query=query)
    assert spy.sent == TEXTS


def test_refresh_does_not_read_but_writes(cached: ScoreCache) -> None:
    run(CachedEngine(SpyEngine(model="old"), cached, SCOPE))
    spy = SpyEngine(model="new")  # the provider now answers differently
    stats = Stats()
    scores = run(CachedEngine(spy, cached, SCOPE, mode="refresh", stats=stats))
    assert spy.sent == TEXTS
    assert scores == [true_score(QUERY, t, "new") for t in TEXTS]
    assert (stats.cache_hits, stats.cache_misses) == (0, 10)
    after = SpyEngine()
    assert run(CachedEngine(after, cached, SCOPE)) == scores
    assert after.sent == []


def test_off_neither_reads_nor_writes(cached: ScoreCache, db_path: Path) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[:5])
    spy = SpyEngine()
    stats = Stats()
    run(CachedEngine(spy, cached, SCOPE, mode="off", stats=stats))
    assert spy.sent == TEXTS
    assert (stats.cache_hits, stats.cache_misses) == (0, 0)
    assert entries(db_path) == 5


def test_ttl_expired_entries_are_sent_again(cached: ScoreCache, clock: Clock) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[:5])
    clock.now += 2 * DAY
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[5:])
    spy = SpyEngine()
    run(CachedEngine(spy, cached, SCOPE, ttl_days=1))
    assert spy.sent == TEXTS[:5]
    spy = SpyEngine()
    run(CachedEngine(spy, cached, SCOPE, ttl_days=1))  # the resent ones were stored afresh
    assert spy.sent == []


def test_every_position_is_reported_once_with_its_score(cached: ScoreCache) -> None:
    run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS[::2])
    reported: list[tuple[int, float]] = []
    scores = run(CachedEngine(SpyEngine(), cached, SCOPE), TEXTS, reported=reported)
    assert sorted(reported) == list(enumerate(scores))


def test_duplicate_texts_are_sent_once_and_reported_everywhere(cached: ScoreCache) -> None:
    texts = ["a", "b", "a", "c", "b", "a"]
    spy = SpyEngine(batch_size=2)
    reported: list[tuple[int, float]] = []
    scores = run(CachedEngine(spy, cached, SCOPE), texts, reported=reported)
    assert spy.sent == ["a", "b", "c"]
    assert scores == [true_score(QUERY, t) for t in texts]
    assert sorted(reported) == list(enumerate(scores))
    reported.clear()  # and from the cache
    assert run(CachedEngine(SpyEngine(), cached, SCOPE), texts, reported=reported) == scores
    assert sorted(reported) == list(enumerate(scores))


def test_batches_stored_before_a_failure_survive_it(cached: ScoreCache) -> None:
    failing = SpyEngine(batch_size=3, fail_after_batches=2)
    with pytest.raises(ConnectionError):
        run(CachedEngine(failing, cached, SCOPE))
    assert failing.sent == TEXTS[:6]
    spy = SpyEngine()
    assert run(CachedEngine(spy, cached, SCOPE)) == [true_score(QUERY, t) for t in TEXTS]
    assert spy.sent == TEXTS[6:]  # nothing paid twice
    last = cached.last_run()
    assert last is not None
    assert (last.hits, last.misses, last.sent) == (6, 4, 4)


def test_the_last_run_is_recorded_even_when_it_fails(cached: ScoreCache) -> None:
    with pytest.raises(ConnectionError):
        run(CachedEngine(SpyEngine(batch_size=3, fail_after_batches=1), cached, SCOPE))
    last = cached.last_run()
    assert last is not None
    assert (last.hits, last.misses, last.sent) == (0, 10, 3)


def test_an_engine_that_reports_no_batches_is_still_cached(cached: ScoreCache) -> None:
    reported: list[tuple[int, float]] = []
    scores = run(CachedEngine(SpyEngine(report=False), cached, SCOPE), reported=reported)
    assert sorted(reported) == list(enumerate(scores))
    spy = SpyEngine()
    run(CachedEngine(spy, cached, SCOPE))
    assert spy.sent == []


def test_no_cache_means_pass_through(warnings: list[str]) -> None:
    spy = SpyEngine()
    stats = Stats()
    assert run(CachedEngine(spy, None, SCOPE, stats=stats)) == [true_score(QUERY, t) for t in TEXTS]
    assert spy.sent == TEXTS
    assert stats.cache_misses == 0


@pytest.mark.parametrize("bad", [{"mode": "sometimes"}, {"ttl_days": -1.0}])
def test_bad_mode_or_ttl_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CachedEngine(SpyEngine(), None, SCOPE, **bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- failures


def test_corrupt_file_is_set_aside_with_one_warning(db_path: Path, warnings: list[str]) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"this is not a database, it is a shopping list\n" * 200
    db_path.write_bytes(garbage)
    store = open_store(db_path, warnings)
    assert len(warnings) == 1
    assert "corrupt" in warnings[0]
    aside = list(db_path.parent.glob(f"{FILE_NAME}.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [garbage]
    engine = CachedEngine(SpyEngine(), store, SCOPE)
    assert run(engine) == [true_score(QUERY, t) for t in TEXTS]
    assert store.lookup(make_keys(SCOPE, QUERY, TEXTS[:1])) == [true_score(QUERY, TEXTS[0])]
    assert len(warnings) == 1


def test_corruption_found_during_a_run_gives_right_scores_and_a_fresh_file(
    db_path: Path, warnings: list[str]
) -> None:
    texts = [f"document number {i} " + "padding " * 20 for i in range(3000)]
    with open_store(db_path, warnings) as store:
        store.store(
            make_keys(SCOPE, QUERY, texts), [0.123] * len(texts), QUESTION
        )  # wrong on purpose
    store = open_store(db_path, warnings)
    page = 4096
    data = bytearray(db_path.read_bytes())
    assert len(data) > 10 * page
    data[page:] = b"\xff" * (len(data) - page)  # every page but the header's
    db_path.write_bytes(bytes(data))

    spy = SpyEngine(batch_size=500)
    scores = run(CachedEngine(spy, store, SCOPE), texts)
    assert scores == [true_score(QUERY, t) for t in texts]  # never the stale 0.123
    assert len(warnings) == 1
    assert "corrupt" in warnings[0]
    assert list(db_path.parent.glob(f"{FILE_NAME}.corrupt-*"))
    store.close()
    with open_store(db_path, warnings) as fresh:  # what was scored after is in a fresh file
        found = fresh.lookup(make_keys(SCOPE, QUERY, texts))
    assert None not in found
    assert len(warnings) == 1


def test_unwritable_directory_warns_once_and_runs_uncached(
    tmp_path: Path, warnings: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {"RERANK_CACHE_DIR": str(blocker / "cache")}  # tests run as root: chmod won't do
    store = open_cache(env, warnings.append)
    assert store is None
    assert len(warnings) == 1
    assert "cache off" in warnings[0]
    spy = SpyEngine()
    engine = CachedEngine(spy, store, SCOPE)
    assert run(engine) == [true_score(QUERY, t) for t in TEXTS]
    assert run(engine) == [true_score(QUERY, t) for t in TEXTS]
    assert spy.sent == TEXTS * 2
    assert len(warnings) == 1


def test_cache_path_that_is_a_directory_warns_and_runs_uncached(
    db_path: Path, warnings: list[str]
) -> None:
    db_path.mkdir(parents=True)
    assert ScoreCache.open(db_path, warnings.append) is None
    assert len(warnings) == 1


def test_a_newer_schema_is_left_alone(db_path: Path, warnings: list[str]) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    assert ScoreCache.open(db_path, warnings.append) is None
    assert len(warnings) == 1
    assert "schema version 99" in warnings[0]
    assert db_path.exists()  # not set aside: a newer rerank still wants it


def test_a_write_failure_turns_the_cache_off_with_one_warning(
    cached: ScoreCache, db_path: Path, warnings: list[str]
) -> None:
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        conn.execute("DROP TABLE scores")
    spy = SpyEngine(batch_size=2)
    engine = CachedEngine(spy, cached, SCOPE)
    assert run(engine) == [true_score(QUERY, t) for t in TEXTS]
    assert run(engine) == [true_score(QUERY, t) for t in TEXTS]
    assert spy.sent == TEXTS * 2
    assert len(warnings) == 1
    assert "cache off" in warnings[0]


def test_a_write_waits_for_another_writer(
    cached: ScoreCache, db_path: Path, warnings: list[str]
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        keys = make_keys(SCOPE, QUERY, ["a"])
        cached.store(keys, [0.5], QUESTION)
        assert cached.lookup(keys) == [0.5]
    finally:
        release.join()
        other.close()
    assert warnings == []


def test_busy_without_waiting_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module.time, "sleep", lambda _: None)
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert cache_module._retry(flaky) == "done"
    assert len(attempts) == 3

    def always_busy() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        cache_module._retry(always_busy)


def test_other_operational_errors_are_not_retried() -> None:
    attempts = []

    def broken() -> None:
        attempts.append(1)
        raise sqlite3.OperationalError("no such table: scores")

    with pytest.raises(sqlite3.OperationalError):
        cache_module._retry(broken)
    assert len(attempts) == 1


# ------------------------------------------------------------- with the real API engine


def test_against_the_loopback_api_nothing_is_paid_twice(
    server: RerankServer, db_path: Path, warnings: list[str]
) -> None:
    from rerank_cli.engines.api.api_engine import ApiEngine
    from rerank_cli.errors import ApiRefused
    from rerank_cli.settings.resolution import Settings

    settings = Settings(
        base_url=server.base_url, api_key=TEST_KEY, batch_size=4, concurrency=1, wait_cold=0
    )
    scope = Scope.for_api(settings.base_url, settings.model)
    texts = [f"Paris is the capital of France, fact {i}" for i in range(12)]

    def rerank(store: ScoreCache) -> tuple[list[float], Stats]:
        stats = Stats()
        engine = CachedEngine(ApiEngine(settings, stats), store, scope, stats=stats)
        return asyncio.run(engine.score("capital of France", texts)), stats

    server.add_faults(Fault(), Fault(), Fault.error(400, "bad request"))  # the third batch fails
    with open_store(db_path, warnings) as store, pytest.raises(ApiRefused):
        rerank(store)
    assert server.billed_documents == 8

    with open_store(db_path, warnings) as store:
        scores, stats = rerank(store)
    assert server.billed_documents == 12  # only the last batch was sent again
    assert (stats.cache_hits, stats.cache_misses, stats.sent) == (8, 4, 4)
    assert scores == [server_score("capital of France", t) for t in texts]

    requests = len(server.requests)
    with open_store(db_path, warnings) as store:
        again, stats = rerank(store)
    assert again == scores
    assert len(server.requests) == requests  # a full rerun makes no request at all
    assert (stats.cache_hits, stats.sent, stats.requests) == (12, 0, 0)
    assert warnings == []
