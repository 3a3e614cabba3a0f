"""``rerank cache path|stats|clear`` through the real entry point."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from rerank_cli.store.score_cache import DAY, FILE_NAME, Scope, ScoreCache, make_keys, question_id
from tests.conftest import RunCli

SCOPE = Scope.for_api("https://gigarouter.ai/v1", "m")


@pytest.fixture
def db_path(isolated_env: dict[str, str]) -> Path:
    return Path(isolated_env["RERANK_CACHE_DIR"]) / FILE_NAME


def fill(path: Path, count: int, age_days: float = 0.0, start: int = 0) -> None:
    stamp = time.time() - age_days * DAY
    store = ScoreCache.open(path, pytest.fail, clock=lambda: stamp)
    assert store is not None
    with store:
        texts = [f"text {i}" for i in range(start, start + count)]
        store.store(make_keys(SCOPE, "q", texts), [0.5] * count, question_id(SCOPE, "q"))


def test_path_prints_the_file_under_the_cache_dir(cli: RunCli, db_path: Path) -> None:
    result = cli("cache", "path")
    assert result.exit_code == 0, result.stderr
    assert result.text == f"{db_path}\n"
    assert not db_path.exists()  # asking for the path creates nothing


def test_path_defaults_to_the_platform_cache_dir(cli: RunCli) -> None:
    import platformdirs

    result = cli("cache", "path", env={"RERANK_CACHE_DIR": ""})
    expected = Path(platformdirs.user_cache_dir("rerank", appauthor=False)) / FILE_NAME
    assert result.text == f"{expected}\n"


def test_stats_without_a_cache(cli: RunCli, db_path: Path) -> None:
    result = cli("cache", "stats")
    assert result.exit_code == 0, result.stderr
    assert "entries:  0" in result.text
    assert "last run: not recorded" in result.text
    assert not db_path.exists()


def test_stats_counts_entries_and_the_last_run(cli: RunCli, db_path: Path) -> None:
    fill(db_path, 3)
    store = ScoreCache.open(db_path, pytest.fail)
    assert store is not None
    with store:
        store.record_run(hits=40, misses=10, sent=10)
    result = cli("cache", "stats")
    assert result.exit_code == 0, result.stderr
    assert "entries:  3" in result.text
    assert "last run: 40 hits, 10 misses (80% hits), 10 scored and stored" in result.text
    assert result.stderr == ""

    data = orjson.loads(cli("cache", "stats", "--json").stdout)
    assert data["path"] == str(db_path)
    assert data["entries"] == 3
    assert data["bytes"] >= db_path.stat().st_size > 0
    assert data["last_run"]["hits"] == 40
    assert data["last_run"]["misses"] == 10


def test_clear_older_than_deletes_by_age(cli: RunCli, db_path: Path) -> None:
    fill(db_path, 4, age_days=10)
    fill(db_path, 6, age_days=1, start=100)
    result = cli("cache", "clear", "--older-than", "5")
    assert result.exit_code == 0, result.stderr
    assert "deleted 4 cached scores older than 5 days; 6 left" in result.stderr
    assert result.stdout == b""
    assert orjson.loads(cli("cache", "stats", "--json").stdout)["entries"] == 6


def test_one_is_singular(cli: RunCli, db_path: Path) -> None:
    fill(db_path, 1, age_days=10)
    store = ScoreCache.open(db_path, pytest.fail)
    assert store is not None
    with store:
        store.record_run(hits=1, misses=1, sent=1)
    assert "last run: 1 hit, 1 miss (50% hits), 1 scored and stored" in cli("cache", "stats").text
    result = cli("cache", "clear", "--older-than", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "rerank: deleted 1 cached score older than 1 day; 0 left\n"


def test_clear_deletes_everything_and_compacts(cli: RunCli, db_path: Path) -> None:
    fill(db_path, 5000)
    before = orjson.loads(cli("cache", "stats", "--json").stdout)["bytes"]
    result = cli("cache", "clear")
    assert result.exit_code == 0, result.stderr
    assert "deleted 5,000 cached scores; 0 left" in result.stderr
    after = orjson.loads(cli("cache", "stats", "--json").stdout)
    assert after["entries"] == 0
    assert after["bytes"] < before / 4


def test_clear_without_a_cache(cli: RunCli, db_path: Path) -> None:
    result = cli("cache", "clear")
    assert result.exit_code == 0, result.stderr
    assert "empty" in result.stderr
    assert not db_path.exists()


def test_clear_refuses_a_negative_age(cli: RunCli) -> None:
    result = cli("cache", "clear", "--older-than", "-1")
    assert result.exit_code == 2


def test_stats_on_a_corrupt_file_warns_and_starts_fresh(cli: RunCli, db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"\x00garbage" * 1000)
    result = cli("cache", "stats")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning") == 1
    assert "corrupt" in result.stderr
    assert "entries:  0" in result.text
    assert len(list(db_path.parent.glob(f"{FILE_NAME}.corrupt-*"))) == 1


def test_an_unusable_cache_is_an_error_for_clear(cli: RunCli, tmp_path: Path) -> None:
    cache_dir = tmp_path / "odd-cache"
    (cache_dir / FILE_NAME).mkdir(parents=True)  # a directory where the file should be
    result = cli("cache", "clear", env={"RERANK_CACHE_DIR": str(cache_dir)})
    assert result.exit_code == 2
    assert "cannot open" in result.stderr


def test_cache_is_a_subcommand_not_a_query(cli: RunCli) -> None:
    result = cli("cache", "--help")
    assert result.exit_code == 0
    for command in ("path", "stats", "clear"):
        assert command in result.text


def test_the_cache_file_is_in_wal_mode_after_a_run(api_cli: RunCli, db_path: Path) -> None:
    """WAL lets concurrent runs read while one writes (issue 4); the mode lives in the file."""
    import sqlite3
    from contextlib import closing

    result = api_cli("capital of France", "Paris is the capital of France.", "Bananas.")
    assert result.exit_code == 0, result.stderr
    assert db_path.exists()
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM scores").fetchone()[0] == 2
