"""The naive baseline of bench/grid.py (P2): what a sequential tool does — plain httpx, one
request at a time — reading the same file and writing the same kind of ranking (JSON lines).

    python bench/naive.py BASE_URL DOCUMENTS BATCH      (the key from GR_KEY)
"""

from __future__ import annotations

import os
import sys

import httpx
import orjson


def main() -> int:
    base_url, path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, encoding="utf-8") as lines:
        texts = [line.rstrip("\n") for line in lines if line.strip()]
    scores = [0.0] * len(texts)
    headers = {"Authorization": f"Bearer {os.environ['GR_KEY']}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        for start in range(0, len(texts), batch):
            body = {
                "model": "Qwen/Qwen3-Reranker-0.6B",
                "query": "how do retries work",
                "documents": texts[start : start + batch],
            }
            answer = client.post(f"{base_url}/rerank", json=body)
            answer.raise_for_status()
            for result in answer.json()["results"]:
                scores[start + result["index"]] = result["relevance_score"]
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    out = sys.stdout.buffer
    for rank, index in enumerate(order, 1):
        record = {"rank": rank, "score": scores[index], "index": index, "text": texts[index]}
        out.write(orjson.dumps(record) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
