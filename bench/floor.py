"""The floor of a cached rerun: the plainest Python doing the work a fully cached
``rerank QUERY -i FILE -o jsonl`` does, and nothing else. No rerank_cli code.

    python bench/floor.py rank  QUERY FILE DB    # JSON lines, best first, to stdout
    python bench/floor.py build QUERY FILE DB SCORES

``rank`` reads FILE's lines, hashes each (query, line) pair into a key the way the score cache
does (a SHA-256 over length-prefixed fields then the text; its first 16 bytes as two signed
64-bit integers: row id and checksum), looks every key up in one SQLite statement, sorts by
score (ties in input order) and writes one JSON line per document: rank, score, index, text and
source, the record the CLI writes, byte for byte. ``build`` makes DB: the score cache's
``scores`` table (same columns, index and journal mode) with one row per line of FILE, its
score taken from SCORES (the CLI's JSON lines for the same input), so that ``rank`` must write
exactly what the CLI wrote.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import sys
import time

import orjson

# Any fixed scope will do: the floor reads its own database. The same fields as the cache's.
SCOPE = ("127.0.0.1:8000/v1", "Qwen/Qwen3-Reranker-0.6B", "", "")


def prefix(query: str) -> bytes:
    fields = (*SCOPE, query)
    return b"rerank-score-v1\0" + b"".join(
        len(f.encode()).to_bytes(8, "big") + f.encode() for f in fields
    )


def read_lines(path: str) -> list[str]:
    with open(path, "rb") as file:
        return file.read().decode("utf-8").split("\n")[:-1]


def keys(query: str, texts: list[str]) -> list[tuple[int, int]]:
    head = prefix(query)
    split = struct.Struct(">qq").unpack_from
    return [split(hashlib.sha256(head + t.encode()).digest()) for t in texts]


def rank(query: str, path: str, db: str) -> None:
    texts = read_lines(path)
    pairs = keys(query, texts)
    ids = orjson.dumps([row_id for row_id, _ in pairs])
    scores: list[float | None] = [None] * len(texts)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT j.key, s.checksum, s.score FROM json_each(?) j"
        " JOIN scores s ON s.id = j.value WHERE s.stored >= ?",
        (ids, 0.0),
    ).fetchall()
    conn.close()
    for at, checksum, score in rows:
        if pairs[at][1] == checksum:
            scores[at] = score
    if None in scores:
        sys.exit("floor: a key is missing from the database")
    order = sorted(range(len(texts)), key=scores.__getitem__, reverse=True)  # type: ignore[arg-type]
    dumps = orjson.dumps
    lines = [
        dumps(
            {
                "rank": number,
                "score": scores[i],
                "index": i,
                "text": texts[i],
                "source": {"file": path, "line": i + 1},
            }
        )
        + b"\n"
        for number, i in enumerate(order, 1)
    ]
    sys.stdout.buffer.write(b"".join(lines))


def build(query: str, path: str, db: str, scored: str) -> None:
    texts = read_lines(path)
    score_of = {}
    with open(scored, "rb") as file:
        for line in file:
            item = orjson.loads(line)
            score_of[item["index"]] = item["score"]
    now = time.time()
    rows = [(k[0], k[1], score_of[i], now) for i, k in enumerate(keys(query, texts))]
    if os.path.exists(db):
        os.remove(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE scores (id INTEGER PRIMARY KEY, checksum INTEGER NOT NULL,"
            " score REAL NOT NULL, stored REAL NOT NULL)"
        )
        conn.execute("CREATE INDEX scores_stored ON scores (stored)")
        conn.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", rows)
    conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["rank"] and len(sys.argv) == 5:
        rank(*sys.argv[2:])
    elif sys.argv[1:2] == ["build"] and len(sys.argv) == 6:
        build(*sys.argv[2:])
    else:
        sys.exit(__doc__)
