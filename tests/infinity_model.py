"""Build a tiny, random cross-encoder for the infinity-emb tests: ``python infinity_model.py DIR``.

Runs under .venv-infinity's python (the main venv has no torch/transformers). Nothing is
downloaded: the config and the vocabulary are written here, the weights drawn from a fixed seed.
The model is meaningless but deterministic; a wide ``initializer_range`` spreads its scores so
that a ranking is not a pile of near-ties. It takes a second or two and well under 1 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words the tests use, then single letters and digits (and their ## continuations) so any
# ASCII word splits into known pieces instead of collapsing into [UNK].
WORDS = (
    "the a an of to in is and or on for with what where how which who why are was be by "
    "capital city country france paris germany berlin spain madrid italy rome river sea "
    "fruit banana apple yellow red green sky blue cat dog fish bird python rust code bug "
    "server model rank search query document test error log tea coffee music night day"
)
CHARACTERS = [*"abcdefghijklmnopqrstuvwxyz0123456789", *".,?!'-:;()"]


def vocabulary() -> list[str]:
    tokens = [*SPECIAL, *WORDS.split(), *CHARACTERS, *(f"##{c}" for c in CHARACTERS if c.isalnum())]
    return list(dict.fromkeys(tokens))  # keep order, drop repeats (e.g. the word "a")


def build(directory: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocabulary()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,  # one relevance logit per (query, document) pair: a cross-encoder
        initializer_range=0.5,
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)

    # A fast tokenizer: infinity counts tokens through its `.encodings`.
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(directory)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: infinity_model.py DIRECTORY")
    build(Path(sys.argv[1]))
