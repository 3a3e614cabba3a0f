"""The score cache: SQLite (WAL) in the platform cache directory (``RERANK_CACHE_DIR``
overrides), keyed by a hash of everything that decides a score, so nothing is paid for twice.

Failures never stop a run and never yield a wrong score: a corrupt file is set aside and a fresh
one started; anything else (unwritable directory, a lock held too long …) turns the cache off for
the run. Either way one warning, through the ``warn`` callback. Several processes may share the
file: writes are short ``BEGIN IMMEDIATE`` transactions, SQLite waits on locks (busy timeout) and
we retry on top of that, since SQLite reports some lock conflicts without waiting.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import random
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from rerank_cli.settings.schema import Settings

FILE_NAME = "scores.sqlite"
SCHEMA_VERSION = 2  # 2: the questions table
KEY_VERSION = b"rerank-score-v1\0"  # change it and every old entry misses: a new key space
BUSY_TIMEOUT = 5.0  # seconds SQLite waits on another process's lock before saying "busy"
ATTEMPTS = 5  # tries of one transaction: some lock conflicts are reported without waiting
PAGE_CACHE_KB = 65_536  # at most, per connection
# While a run only writes (nothing of its question is stored yet), a page, once written, is not
# wanted again: a million scores stored would otherwise fill all of PAGE_CACHE_KB.
WRITING_CACHE_KB = 4_096
LOOKUP_CHUNK = 500  # variables per query: under the oldest SQLite limit (999)
DAY = 86_400.0

CacheMode = Literal["normal", "refresh", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("normal", "refresh", "off")

# A key is the first 16 bytes of the SHA-256 as two signed 64-bit integers: the first is the
# row id (integer keys look up about twice as fast as blobs), the second is checked on every
# hit, so a wrong score needs a 128-bit collision.
Key = tuple[int, int]
_split_digest = struct.Struct(">qq").unpack_from

Warn = Callable[[str], None]
T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS scores ("
    " id INTEGER PRIMARY KEY, checksum INTEGER NOT NULL,"
    " score REAL NOT NULL, stored REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS scores_stored ON scores (stored)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Every question (endpoint, model, instruction, query) with a score stored: a question not
    # here has none, and a run need not hash and look up its texts before sending them.
    "CREATE TABLE IF NOT EXISTS questions (id INTEGER PRIMARY KEY)",
)
# A file of schema 1 had scores before questions were noted: its questions table is complete
# only once it is emptied (rerank cache clear).
_COMPLETE = "INSERT OR REPLACE INTO meta (name, value) VALUES ('questions', 'complete')"
_IS_COMPLETE = "SELECT 1 FROM meta WHERE name = 'questions' AND value = 'complete'"
_ASKED = "INSERT OR IGNORE INTO questions (id) VALUES (?)"
_SELECT_JSON = (
    "SELECT j.key, s.checksum, s.score FROM json_each(?) j"
    " JOIN scores s ON s.id = j.value WHERE s.stored >= ?"
)
_UPSERT = "INSERT OR REPLACE INTO scores (id, checksum, score, stored) VALUES (?, ?, ?, ?)"


def cache_dir(env: Mapping[str, str]) -> Path:
    from rerank_cli.settings.config_file import user_dir

    return user_dir(env, "RERANK_CACHE_DIR", "cache")


def cache_path(env: Mapping[str, str]) -> Path:
    return cache_dir(env) / FILE_NAME


# ---------------------------------------------------------------------------- keys


def endpoint_of(base_url: str) -> str:
    """``host[:port]/path`` of a base URL: no scheme, no credentials, no query string."""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: keep it verbatim rather than fail
        port = parts.netloc.rpartition(":")[2]
    return f"{host}{port}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class Scope:
    """Everything besides the query and the document that decides a score. Never the key."""

    endpoint: str  # endpoint_of(base_url)
    model: str
    instruction: str = ""
    instruction_mode: str = ""  # how the instruction reaches the model, when there is one

    @classmethod
    def for_api(
        cls, base_url: str, model: str, instruction: str = "", instruction_mode: str = ""
    ) -> Scope:
        return cls(endpoint_of(base_url), model, instruction, instruction_mode)

    @classmethod
    def for_settings(cls, settings: Settings) -> Scope:
        """The scope of a run: the endpoint requests go to, the model, and the instruction with
        its delivery mode (the same instruction delivered another way is another score)."""
        mode = settings.instruction_mode
        extra = settings.profile.extra_fields
        if extra:  # fixed request fields (TEI raw_scores …) change scores too
            mode += " " + json.dumps(dict(extra), sort_keys=True)
        return cls.for_api(settings.rerank_url, settings.model, settings.instruction or "", mode)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # any str, even undecodable input kept as-is


def _field(text: str) -> bytes:
    data = _encode(text)
    return len(data).to_bytes(8, "big") + data


def _prefix(scope: Scope, query: str) -> bytes:
    """Every field before the text, each length-prefixed, so the encoding is injective."""
    return KEY_VERSION + b"".join(
        _field(part)
        for part in (scope.endpoint, scope.model, scope.instruction, scope.instruction_mode, query)
    )


def make_keys(scope: Scope, query: str, texts: Sequence[str]) -> list[Key]:
    """One key per text: the fields before it, then the text itself."""
    prefix = _prefix(scope, query)
    sha256, split = hashlib.sha256, _split_digest
    return cast(
        "list[Key]",
        [split(sha256(prefix + t.encode("utf-8", "surrogatepass")).digest()) for t in texts],
    )


def question_id(scope: Scope, query: str) -> int:
    """What every key of (scope, query) shares, as one number (a row id of ``questions``)."""
    digest = hashlib.sha256(b"question\0" + _prefix(scope, query)).digest()
    return int(_split_digest(digest)[0])


@functools.cache
def _has_json_each() -> bool:
    """json_each is built into SQLite from 3.38, a compile-time option before."""
    if sqlite3.sqlite_version_info >= (3, 38):
        return True
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute("SELECT value FROM json_each('[1]')").fetchall()
        except sqlite3.OperationalError:
            return False
    return True


def _store(
    conn: sqlite3.Connection, rows: list[tuple[int, int, float, float]], question: int
) -> None:
    conn.executemany(_UPSERT, rows)
    conn.execute(_ASKED, (question,))


def _fetch_by_json(
    conn: sqlite3.Connection, keys: Sequence[Key], oldest: float
) -> list[float | None]:
    """All row ids as one JSON array, in one statement: SQLite reads them in C (200 statements
    of 500 placeholders each take twice as long). Each row says its place in the array. A hit
    must match the whole key (row id and checksum): a row-id collision is a miss."""
    ids = orjson.dumps([row_id for row_id, _ in keys])
    scores: list[float | None] = [None] * len(keys)
    for at, checksum, score in conn.execute(_SELECT_JSON, (ids, oldest)).fetchall():
        if keys[at][1] == checksum:
            scores[at] = score
    return scores


def _fetch_in_chunks(
    conn: sqlite3.Connection, keys: Sequence[Key], oldest: float
) -> list[float | None]:
    """The same without json_each: chunks of placeholders, in one read snapshot."""
    ids = sorted([row_id for row_id, _ in keys])
    rows: list[tuple[int, int, float]] = []
    conn.execute("BEGIN")
    try:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(
                f"SELECT id, checksum, score FROM scores WHERE stored >= ? AND id IN ({marks})",
                (oldest, *chunk),
            ).fetchall()
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # a read transaction: nothing to keep
    found = {(row_id, checksum): score for row_id, checksum, score in rows}
    return list(map(found.get, keys))


# ---------------------------------------------------------------------------- errors


def _primary_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF if isinstance(code, int) else None


def is_busy(error: sqlite3.Error) -> bool:
    code = _primary_code(error)
    if code is not None:
        return code in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    message = str(error).lower()
    return "locked" in message or "busy" in message


def is_corrupt(error: sqlite3.Error) -> bool:
    code = _primary_code(error)
    if code is not None:
        return code in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    message = str(error).lower()
    return "malformed" in message or "not a database" in message


class _Incompatible(Exception):
    """The file has a schema this version does not know (a newer rerank wrote it)."""


# ---------------------------------------------------------------------------- the store


@dataclass
class LastRun:
    hits: int
    misses: int
    sent: int
    at: float


P = ParamSpec("P")
R = TypeVar("R")


def _one_thread_at_a_time(
    method: Callable[Concatenate[ScoreCache, P], R],
) -> Callable[Concatenate[ScoreCache, P], R]:
    """The connection is shared by a session's threads (the caller's, the event loop's, each
    writer's): SQLite objects must not be used by two of them at once."""

    @functools.wraps(method)
    def serialized(self: ScoreCache, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return serialized


class ScoreCache:
    """One connection to the cache file. Open it with :func:`open_cache` or :meth:`open`.
    Safe to share between threads: its run-time methods take turns.

    The run-time methods (:meth:`lookup`, :meth:`store`, :meth:`record_run`) never raise: on
    failure they warn once and the cache answers "miss" from then on. The maintenance methods
    (``entries``, ``clear`` …) raise :class:`sqlite3.Error` for the caller to report.
    """

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        warn: Warn,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = connection
        self._identity = _identity(path)
        self._warn = warn
        self._warned = False
        self._clock = clock
        self._lock = threading.RLock()

    # -- opening

    @classmethod
    def open(
        cls, path: Path, warn: Warn, clock: Callable[[], float] = time.time
    ) -> ScoreCache | None:
        """The cache at ``path``, or None (after one warning) when it cannot be used."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            warn(f"score cache off: cannot create {path.parent} ({_reason(error)})")
            return None
        for attempt in (1, 2):
            identity = _identity(path)
            try:
                return cls(path, _connect(path), warn, clock)
            except sqlite3.Error as error:
                if attempt == 1 and is_corrupt(error):
                    moved = _set_aside(path, identity)
                    warn(
                        f"score cache {path} is corrupt ({error}); "
                        + (f"moved it to {moved.name} and " if moved else "")
                        + "started a fresh one"
                    )
                    continue
                warn(f"score cache off: cannot open {path} ({error})")
            except _Incompatible as error:
                warn(f"score cache off: {path} {error}")
            except OSError as error:
                warn(f"score cache off: cannot open {path} ({_reason(error)})")
            return None
        return None  # pragma: no cover (the loop always returns)

    @_one_thread_at_a_time
    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the run

    @_one_thread_at_a_time
    def lookup(self, keys: Sequence[Key], ttl_days: float | None = None) -> list[float | None]:
        """The cached score of each key, None for a miss (absent, older than ``ttl_days``,
        or the cache is unusable)."""
        if self._conn is None or not keys:
            return [None] * len(keys)
        oldest = -math.inf if ttl_days is None else self._clock() - ttl_days * DAY
        conn = self._conn
        fetch = _fetch_by_json if _has_json_each() else _fetch_in_chunks
        try:
            return _retry(lambda: fetch(conn, keys, oldest))
        except sqlite3.Error as error:
            self._failed("read", error)
            return [None] * len(keys)

    @_one_thread_at_a_time
    def store(self, keys: Sequence[Key], scores: Sequence[float], question: int) -> None:
        """Write one batch in one transaction, with the question its keys belong to (see
        :func:`question_id`): a score stored without it would never be looked up.
        NaN is not cached (SQLite would make it NULL)."""
        now = self._clock()
        rows = [
            (row_id, checksum, score, now)
            for (row_id, checksum), score in zip(keys, scores, strict=True)
            if not math.isnan(score)
        ]
        if self._conn is None or not rows:
            return
        for attempt in (1, 2):
            conn = self._conn
            if conn is None:
                return
            try:
                _write(conn, lambda c: _store(c, rows, question))
                return
            except sqlite3.Error as error:
                # A file found corrupt now is replaced; the batch goes to the fresh one.
                if not (attempt == 1 and self._failed("write", error)):
                    return

    @_one_thread_at_a_time
    def page_cache(self, kilobytes: int) -> None:
        """Hold at most ``kilobytes`` of pages in memory (PAGE_CACHE_KB for lookups,
        WRITING_CACHE_KB while a run only stores)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute(f"PRAGMA cache_size = -{int(kilobytes)}")

    @_one_thread_at_a_time
    def may_have(self, question: int) -> bool:
        """False when no score of this question is stored: its texts need no lookup. True
        when some may be (or when a file from before questions were noted cannot say)."""
        conn = self._conn
        if conn is None:
            return False  # an unusable cache answers nothing
        try:
            found = _retry(
                lambda: (
                    conn.execute(_IS_COMPLETE).fetchone() is None
                    or conn.execute("SELECT 1 FROM questions WHERE id = ?", (question,)).fetchone()
                    is not None
                )
            )
        except sqlite3.Error as error:
            self._failed("read", error)
            return False
        return bool(found)

    @_one_thread_at_a_time
    def record_run(self, hits: int, misses: int, sent: int) -> None:
        """This run's hit/miss counts, for ``rerank cache stats``."""
        if self._conn is None:
            return
        value = json.dumps({"hits": hits, "misses": misses, "sent": sent, "at": self._clock()})
        try:
            _write(
                self._conn,
                lambda c: c.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('last_run', ?)", (value,)
                ),
            )
        except sqlite3.Error as error:
            self._failed("write", error)

    def _failed(self, doing: str, error: sqlite3.Error) -> bool:
        """Handle a run-time error; True when a fresh cache replaced a corrupt one."""
        self.close()
        if is_corrupt(error):
            moved = _set_aside(self.path, self._identity)
            try:
                self._conn = _connect(self.path)
                self._identity = _identity(self.path)
            except (sqlite3.Error, OSError, _Incompatible):
                self._conn = None
            self._warn_once(
                f"score cache {self.path} is corrupt ({error}); "
                + (f"moved it to {moved.name}" if moved else "another process replaced it")
                + ("; started a fresh one" if self._conn else "; continuing without it")
            )
            return self._conn is not None
        self._warn_once(f"score cache off for this run: cannot {doing} {self.path} ({error})")
        return False

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(message)

    # -- maintenance (these raise sqlite3.Error)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the score cache is closed")
        return self._conn

    def entries(self) -> int:
        row = self._connection().execute("SELECT count(*) FROM scores").fetchone()
        return int(row[0])

    def oldest_and_newest(self) -> tuple[float, float] | None:
        row = self._connection().execute("SELECT min(stored), max(stored) FROM scores").fetchone()
        return None if row[0] is None else (float(row[0]), float(row[1]))

    def size_on_disk(self) -> int:
        """The file plus its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def last_run(self) -> LastRun | None:
        row = (
            self._connection().execute("SELECT value FROM meta WHERE name = 'last_run'").fetchone()
        )
        if row is None:
            return None
        try:
            data: dict[str, Any] = json.loads(row[0])
            return LastRun(
                int(data["hits"]), int(data["misses"]), int(data["sent"]), float(data["at"])
            )
        except (ValueError, KeyError, TypeError):
            return None

    def clear(self, older_than_days: float | None = None) -> int:
        """Delete entries stored more than ``older_than_days`` ago, or all of them (then
        compact the file). Returns how many were deleted."""
        conn = self._connection()
        deleted = 0

        def delete(c: sqlite3.Connection) -> None:
            nonlocal deleted
            if older_than_days is None:
                deleted = c.execute("DELETE FROM scores").rowcount
                c.execute("DELETE FROM questions")
                c.execute(_COMPLETE)  # empty now: every question from here on is noted
            else:
                cutoff = self._clock() - older_than_days * DAY
                deleted = c.execute("DELETE FROM scores WHERE stored < ?", (cutoff,)).rowcount

        _write(conn, delete)
        if older_than_days is None:
            _retry(lambda: conn.execute("VACUUM"))
            _retry(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        return deleted


def open_cache(
    env: Mapping[str, str], warn: Warn, clock: Callable[[], float] = time.time
) -> ScoreCache | None:
    """The user's score cache, or None (after one warning) when it cannot be used."""
    try:
        path = cache_path(env)
    except Exception as error:  # platformdirs could not name a directory
        warn(f"score cache off: no cache directory ({error})")
        return None
    return ScoreCache.open(path, warn, clock)


# ---------------------------------------------------------------------------- helpers


def _connect(path: Path) -> sqlite3.Connection:
    """Open, switch to WAL, create the schema. Raises sqlite3.Error, _Incompatible."""
    # One thread at a time uses the connection, but not always the one that opened it: batches
    # are stored by the engine's writer thread.
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:

        def setup() -> None:
            # The first statement reads the header: a file that is not a database fails here.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise _Incompatible(
                    f"has schema version {version}; this rerank knows {SCHEMA_VERSION}"
                )
            conn.execute("PRAGMA journal_mode = WAL")
            if version < SCHEMA_VERSION:
                _write(conn, _migrate)
            else:
                # Reading the schema touches it: a damaged schema page shows up now, not later.
                conn.execute("SELECT 1 FROM scores LIMIT 1").fetchall()

        _retry(setup)
        # A commit survives a crash of the process; only power loss may drop the last ones,
        # which just means paying for those documents again.
        conn.execute("PRAGMA synchronous = NORMAL")
        # Keys are hashes: a large lookup visits pages in random order, and the default 2 MB
        # of page cache would read most of them more than once. Pages are cached as read.
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KB}")
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring a schema-1 file up to date (in one write transaction)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]  # again: under the lock now
    if version == SCHEMA_VERSION:
        return  # another process got here first
    for statement in _SCHEMA:
        conn.execute(statement)
    if version == 0 or conn.execute("SELECT 1 FROM scores LIMIT 1").fetchone() is None:
        conn.execute(_COMPLETE)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _retry(action: Callable[[], T]) -> T:
    """Run ``action``, again after a jittered pause while SQLite reports the file busy."""
    for attempt in range(ATTEMPTS):
        try:
            return action()
        except sqlite3.OperationalError as error:
            if not is_busy(error) or attempt == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.02, 0.05) * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _write(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], object]) -> None:
    """``body`` in one write transaction, retried while busy. IMMEDIATE takes the write lock
    up front, where SQLite's busy timeout applies (a deferred upgrade can fail at once)."""

    def transaction() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    _retry(transaction)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _set_aside(path: Path, identity: tuple[int, int] | None) -> Path | None:
    """Rename a corrupt file (and its WAL and shared-memory files) out of the way; None when
    there was nothing to move. With ``identity``, only if the file is still the one we opened:
    another process may already have replaced it with a fresh one."""
    if identity is not None and _identity(path) != identity:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}-{os.getpid()}")
    try:
        os.replace(path, target)
    except OSError:
        return None
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
