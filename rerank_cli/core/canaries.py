"""What ``rerank doctor`` sends and how it judges the answers: canary pairs any sound reranker
orders right (English, Chinese, code), the long-document probe, and the verdicts on their
scores. Pure: no I/O, no session — jobs/doctor_job.py does the sending.

The canaries live in core/, not providers/: they test the model behind any provider, and the
verdicts are plain functions of scores, tested without a server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_cli.providers import tokens

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)


@dataclass(frozen=True)
class Check:
    """One row of the report: what was checked, how it went, why in one line."""

    name: str  # a stable key for JSON: "canaries", "long_documents"
    label: str  # for the table: "canary pairs"
    status: str  # one of STATUSES
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


def overall(checks: Sequence[Check]) -> str:
    """fail if any check failed, else warn if any warned, else pass."""
    statuses = {check.status for check in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


# ---------------------------------------------------------------------------------------------
# Canary pairs


@dataclass(frozen=True)
class Canary:
    language: str  # "English", "Chinese", "code"
    query: str
    relevant: str
    irrelevant: str


# Easy on purpose: the irrelevant document is off topic, so a reranker that reads the text gets
# every pair right. (Chinese queries are keywords separated by spaces, as people type them into
# a search box.)
CANARIES: tuple[Canary, ...] = (
    Canary(
        "English",
        "capital of France",
        "Paris is the capital of France and its largest city.",
        "Photosynthesis converts sunlight, water and carbon dioxide into sugar.",
    ),
    Canary(
        "English",
        "how do vaccines train the immune system",
        "Vaccines train the immune system by showing it a harmless piece of a pathogen, so "
        "that it learns to recognise the real thing.",
        "Jazz emerged in New Orleans in the early twentieth century.",
    ),
    Canary(
        "English",
        "boiling point of water at sea level",
        "At sea level, water boils at 100 °C (212 °F).",
        "Mount Everest's summit is 8,849 metres high.",
    ),
    Canary(
        "English",
        "who wrote Pride and Prejudice",
        "Pride and Prejudice is a novel by Jane Austen, published in 1813.",
        "Basalt forms when lava cools quickly near the surface.",
    ),
    Canary(
        "Chinese",
        "长城 有多长",
        "长城，全长约两万一千公里，是世界上最长的军事防御工程。",
        "咖啡因是一种中枢神经兴奋剂，常见于咖啡和茶中。",
    ),
    Canary(
        "Chinese",
        "光合作用 原理",
        "光合作用，是植物利用阳光把水和二氧化碳转化为葡萄糖并释放氧气的过程。",
        "京剧是中国的传统戏曲，已有两百多年的历史。",
    ),
    Canary(
        "Chinese",
        "熊猫 吃 什么",
        "熊猫，主要吃竹子，一只成年熊猫每天要吃十几公斤。",
        "股票市场的波动受利率和通货膨胀的影响。",
    ),
    Canary(
        "Chinese",
        "Python 列表 排序",
        "在 Python 中，列表可以用 sorted() 或 list.sort() 排序。",
        "明天多云转晴，最高气温二十五度。",
    ),
    Canary(
        "code",
        "python read a file line by line",
        "# read a file line by line\nwith open(path) as f:\n    for line in f:\n"
        "        print(line.rstrip())",
        "body { margin: 0; font-family: sans-serif; }",
    ),
    Canary(
        "code",
        "javascript debounce function",
        "function debounce(fn, ms) {\n  let timer;\n  return (...args) => {\n"
        "    clearTimeout(timer);\n    timer = setTimeout(() => fn(...args), ms);\n  };\n}",
        "SELECT name, COUNT(*) FROM orders GROUP BY name;",
    ),
    Canary(
        "code",
        "sql count rows per group",
        "SELECT customer_id, COUNT(*) AS rows FROM orders GROUP BY customer_id;",
        "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    ),
    Canary(
        "code",
        "rust spawn a thread",
        'use std::thread;\n\nlet handle = thread::spawn(|| {\n    println!("hello from a '
        'thread");\n});\nhandle.join().unwrap();',
        "git rebase -i HEAD~3 lets you squash the last three commits.",
    ),
)

# The instruction check scores these again under another instruction: one per language.
INSTRUCTION_CANARIES: tuple[Canary, ...] = tuple(
    next(c for c in CANARIES if c.language == language)
    for language in ("English", "Chinese", "code")
)

TEMPLATE_CAUSE = (
    "scores ignore the text: the server is probably serving Qwen3-Reranker without its prompt "
    "template — fix the server's chat template, or try --instruction-mode template"
)
MODEL_CAUSE = (
    "scores ignore the text: check that the server runs a reranker (a cross-encoder) as the "
    "model, and that it reads the query and the document"
)
# Relative spread under which scores are taken to ignore the text.
FLAT = 0.01


def spread(scores: Sequence[float]) -> float:
    return max(scores) - min(scores) if scores else 0.0


def barely_vary(scores: Sequence[float]) -> bool:
    """The scores hardly move: their range is under 1 % of their size (or nothing at all)."""
    size = max((abs(s) for s in scores), default=0.0)
    width = spread(scores)
    return width <= 1e-9 or width < FLAT * size


def judge_canaries(
    canaries: Sequence[Canary],
    relevant: Sequence[float],
    irrelevant: Sequence[float],
    *,
    qwen3: bool,
    template_mode: bool = False,
) -> Check:
    """pass: the relevant document outscores the irrelevant one in every pair; warn: in all but
    one; fail: in fewer, or the scores barely vary — with the likely cause."""
    total = len(canaries)
    right = [r > i for r, i in zip(relevant, irrelevant, strict=True)]
    wins = sum(right)
    everything = [*relevant, *irrelevant]
    by_language: dict[str, list[int]] = {}
    for canary, won in zip(canaries, right, strict=True):
        tally = by_language.setdefault(canary.language, [0, 0])
        tally[0] += won
        tally[1] += 1
    languages = ", ".join(f"{name} {won}/{of}" for name, (won, of) in by_language.items())
    low, high = (min(everything), max(everything)) if everything else (0.0, 0.0)
    details = {
        "pairs": total,
        "ordered_right": wins,
        "by_language": {name: won for name, (won, _) in by_language.items()},
        "scores": [
            {"relevant": r, "irrelevant": i} for r, i in zip(relevant, irrelevant, strict=True)
        ],
        "min_score": low,
        "max_score": high,
    }
    figures = (
        f"{wins} of {total} pairs ordered right ({languages}); scores {number(low)}–{number(high)}"
    )
    cause = TEMPLATE_CAUSE if qwen3 and not template_mode else MODEL_CAUSE
    if barely_vary(everything):
        return Check(
            "canaries",
            "canary pairs",
            FAIL,
            f"{cause} (every score within {number(low)}–{number(high)})",
            details,
        )
    if wins == total:
        return Check("canaries", "canary pairs", PASS, figures, details)
    if wins >= total - 1:
        missed = next(c for c, won in zip(canaries, right, strict=True) if not won)
        return Check(
            "canaries",
            "canary pairs",
            WARN,
            f"{figures}; misordered: {missed.query!r}",
            details,
        )
    if wins == 0:
        return Check(
            "canaries",
            "canary pairs",
            FAIL,
            f"{figures}: the relevant document scored lower in every pair — the scores look "
            "inverted (a distance, not a relevance?)",
            details,
        )
    return Check("canaries", "canary pairs", FAIL, f"{figures} (chance is half): {cause}", details)


def judge_instruction(
    before: Sequence[float],
    after: Sequence[float],
    canary_scores: Sequence[float],
    field_name: str | None,
    mode: str,
) -> Check:
    """pass when another instruction moves the scores by more than 1 % of the canaries' range
    (server noise stays below that), else warn: the instruction does not reach the model."""
    changes = [abs(a - b) for a, b in zip(after, before, strict=True)]
    largest = max(changes, default=0.0)
    details = {"largest_change": largest, "mode": mode}
    if largest > max(FLAT * spread(canary_scores), 1e-9):
        return Check(
            "instruction",
            "instruction",
            PASS,
            f"another instruction moved the scores by up to {number(largest)} (mode {mode})",
            details,
        )
    if mode == "field":
        hint = (
            f"the server ignores the {field_name!r} field (older servers drop unknown fields) "
            "— try --instruction-mode query, or template for a server without the Qwen3 template"
        )
    elif mode == "query":
        hint = "the model ignores what the query says — is it instruction-aware?"
    else:
        hint = "the model ignores the prompt's <Instruct> line — is it Qwen3-Reranker?"
    return Check(
        "instruction", "instruction", WARN, f"another instruction changed no score: {hint}", details
    )


# ---------------------------------------------------------------------------------------------
# Long documents: is a document near the limit read whole?

NEEDLE_QUERY = "liquid nitrogen boiling point"
NEEDLE = "The boiling point of liquid nitrogen is −196 °C (77 K) at sea-level pressure."
NEEDLE_OFF = "Sourdough bread rises slowly because wild yeast ferments the dough."
# Neutral filler, on no subject near the query.
FILLER = (
    "Medieval mapmakers drew coastlines from sailors' reports, and many charts placed sea "
    "monsters in waters nobody had crossed.",
    "A vegetable garden needs six hours of sun a day, soil rich in compost, and watering early "
    "in the morning rather than at night.",
    "The orchestra tuned to the oboe's A before the overture, and the conductor waited for "
    "silence in the hall.",
    "Trains on the coastal line run every twenty minutes on weekdays and every hour on Sundays "
    "and public holidays.",
    "Bees tell each other the direction of flowers through a waggle dance whose angle mirrors "
    "the sun's position.",
    "The library's reading room closes at six, but the archive takes requests for manuscripts "
    "until four.",
)
# Lengths probed below the limit, so that a truncating server's cut can be bracketed.
PROBE_TOKENS = (512, 2048, 8192)
# With no known limit, the longest document probed.
UNKNOWN_LIMIT_TOKENS = 8192
MARGIN = 32  # tokens under the limit: "near", yet safely within it


def probe_lengths(limit: int | None) -> list[int]:
    """Document lengths to probe, shortest first; the last one is near the limit."""
    top = UNKNOWN_LIMIT_TOKENS if limit is None else max(limit - MARGIN, 1)
    lengths = [n for n in PROBE_TOKENS if n < top * 0.9]
    return [*lengths, top]


def long_document(tokenizer: tokens.Tokenizer, total: int) -> str:
    """Filler, then the needle as its last sentence: at most ``total`` tokens by ``tokenizer``."""
    needle = "\n\n" + NEEDLE
    room = max(total - tokenizer.count(needle) - 2, 0)
    paragraphs: list[str] = []
    words = 0
    while words < room:  # every word is at least one token: enough filler to cut from
        paragraph = FILLER[len(paragraphs) % len(FILLER)]
        paragraphs.append(paragraph)
        words += len(paragraph.split())
    filler = tokenizer.truncate(" ".join(paragraphs), room) if room else ""
    text = filler + needle
    while tokenizer.count(text) > total and filler:  # a join may merge tokens differently
        filler = tokenizer.truncate(filler, max(tokenizer.count(filler) - 8, 0))
        text = filler + needle
    return text


def seen(score: float, relevant: float, irrelevant: float) -> bool:
    """A long document's score is nearer the short relevant one's than the irrelevant one's."""
    return score >= irrelevant + (relevant - irrelevant) / 2


def number(value: float) -> str:
    """A score in few characters, for reasons: 0.9981, 0, 1.2e-05, -3.41."""
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
