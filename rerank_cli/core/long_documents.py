"""Long documents, by exact tokens: the per-document limit a provider and model allow for this
query, and a splitter that keeps every scored text within it — windows of the document (chunk,
the best window's score wins), its first tokens (truncate), or a refusal (error)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rerank_cli.core.documents import Chunk, Document
from rerank_cli.core.pipeline import Splitter
from rerank_cli.errors import InputError, UsageError
from rerank_cli.providers import tokens
from rerank_cli.providers.instructions import DEFAULT_INSTRUCTION, instructed_query
from rerank_cli.providers.profile import tokenizer_family
from rerank_cli.settings.schema import Settings

# A query so long that documents get fewer tokens than this leaves nothing worth scoring.
MIN_DOCUMENT_TOKENS = 16
DEFAULT_OVERLAP = 64  # tokens, unless a window is small: then a quarter of it


def _as_the_model_sees_it(settings: Settings, query: str) -> tuple[str, str | None]:
    """(query, instruction) inside the model's prompt, by delivery mode. Query mode puts ours
    in the query and the server's template adds its default instruction around it."""
    instruction = settings.instruction
    mode = settings.instruction_mode
    if mode == "query":
        return (instructed_query(instruction, query) if instruction else query), None
    if mode == "template":
        return query, instruction or DEFAULT_INSTRUCTION
    return query, instruction if mode == "field" else None


class Limit:
    """The most tokens a document may have. Exact Qwen3 limits need the vocabulary (~0.3 s to
    load), so they are computed only when a document comes near: ``floor``, a bound from the
    byte estimate, is known at once and never above the exact limit."""

    def __init__(
        self,
        tokenizer: tokens.Tokenizer,
        max_tokens: int | None = None,
        *,
        compute: Callable[[], int] | None = None,
        floor: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self._compute = compute
        self._max_tokens = max_tokens
        self.floor = max_tokens if compute is None else floor

    @property
    def known(self) -> bool:
        return self._compute is not None or self._max_tokens is not None

    @property
    def max_tokens(self) -> int | None:
        """None: the provider sets no limit we know of."""
        if self._compute is not None:
            self._max_tokens, self._compute = self._compute(), None
        return self._max_tokens

    def describe(self) -> str:
        if self.max_tokens is None:
            return f"no per-document token limit known; tokens by {self.tokenizer.name}"
        return f"documents up to {self.max_tokens:,} tokens, counted by {self.tokenizer.name}"


def document_limit(settings: Settings, query: str) -> Limit:
    profile = settings.profile
    qwen3 = tokenizer_family(profile, settings.model) == "qwen3"
    exact = qwen3 and tokens.qwen_available() is None
    tokenizer: tokens.Tokenizer = (
        tokens.QwenTokenizer(lead=tokens.QWEN3_DOCUMENT_LEAD)
        if exact
        else tokens.tokenizer_for(settings.model)
    )
    if settings.max_tokens is not None:
        return Limit(tokenizer, settings.max_tokens)
    seen_query, instruction = _as_the_model_sees_it(settings, query)
    # The profile's context is its default model's (or the Qwen3 family's): another model
    # served there, say a 512-token cross-encoder, has its own, which we do not know.
    context = profile.context_tokens if qwen3 or settings.model == profile.model else None
    if qwen3 and context and exact:
        head = tokens.qwen3_reranker_head(seen_query, instruction)
        estimated = sum(
            map(
                tokens.estimate_tokens,
                (tokens.QWEN3_RERANKER_PREFIX, head, tokens.QWEN3_RERANKER_SUFFIX),
            )
        )

        def compute() -> int:
            return _checked(tokens.qwen3_document_limit(seen_query, instruction, context), context)

        return Limit(tokenizer, compute=compute, floor=context - estimated)
    if qwen3 and context:
        if not exact:
            head = tokens.qwen3_reranker_head(seen_query, instruction)
            prompt = tokens.QWEN3_RERANKER_PREFIX + head + tokens.QWEN3_RERANKER_SUFFIX
            limit = context - tokenizer.count(prompt)
    elif profile.max_tokens_per_doc:
        limit = profile.max_tokens_per_doc
    elif context:
        limit = context - tokenizer.count(seen_query) - tokenizer.count(instruction or "")
    else:
        return Limit(tokenizer, None)
    return Limit(tokenizer, _checked(limit, context))


def _checked(limit: int, context: int | None) -> int:
    if limit < MIN_DOCUMENT_TOKENS:
        raise UsageError(
            f"the query (with its instruction) leaves {limit} tokens of the model's {context} "
            "for a document: shorten it"
        )
    return limit


class LongDocuments:
    """Wraps a splitter so that no scored text is over the limit."""

    def __init__(self, limit: Limit, mode: str, overlap: int | None) -> None:
        self.limit = limit
        self.mode = mode
        self.overlap = overlap  # None: the default
        self.truncated = 0
        self.windowed = 0

    def _overlap(self, max_tokens: int) -> int:
        if self.overlap is None:
            return min(DEFAULT_OVERLAP, max_tokens // 4)
        if self.mode == "chunk" and self.overlap >= max_tokens:
            raise UsageError(
                f"--chunk-overlap {self.overlap} must be below the {max_tokens:,} tokens a "
                "window may hold (--max-tokens)"
            )
        return self.overlap

    def _none_near(self, texts: Iterable[str]) -> bool:
        """True when no text can come near the limit: one len() per text, at the estimate's
        worst case for every character."""
        floor = self.limit.floor
        longest = max(map(len, texts), default=0)
        # estimate_tokens(" " + text) ≤ 1 + weight of the text + 1 (see the splitter below).
        return floor is not None and longest * tokens.MAX_CHAR_WEIGHT + 2 <= floor

    def wrap(self, split: Splitter, documents: Sequence[Document] = ()) -> Splitter:
        """``split``, keeping every text it makes within the limit. When none of ``documents``
        can come near the limit (nor, then, any part of one), ``split`` itself."""
        limit = self.limit
        if not limit.known:
            return split
        tokenizer = limit.tokenizer
        floor = limit.floor
        if self.overlap is not None and limit.max_tokens is not None:
            self._overlap(limit.max_tokens)  # a bad --chunk-overlap is refused at once
        if documents and self._none_near(d.text for d in documents):
            return split

        def splitter(document: Document) -> Sequence[tuple[Chunk | None, str]]:
            units = split(document)
            # Most documents are far below the limit: the byte estimate (with the space the
            # prompt puts before a document) says so without loading a vocabulary.
            if floor is not None and all(
                tokens.estimate_tokens(" " + text) <= floor for _, text in units
            ):
                return units
            max_tokens = limit.max_tokens
            if max_tokens is None or all(tokenizer.fits(text, max_tokens) for _, text in units):
                return units
            overlap = self._overlap(max_tokens)
            out: list[tuple[Chunk | None, str]] = []
            for chunk, text in units:
                if tokenizer.fits(text, max_tokens):
                    out.append((chunk, text))
                elif self.mode == "error":
                    where = document.source or f"document {document.index + 1}"
                    raise InputError(
                        f"{where}: {tokenizer.count(text):,} tokens, over the limit of "
                        f"{max_tokens:,} (use --long chunk or --long truncate)"
                    )
                elif self.mode == "truncate":
                    self.truncated += 1
                    kept = tokenizer.truncate(text, max_tokens)
                    base = chunk.start_char if chunk is not None else 0
                    lines = (
                        (chunk.start_line, chunk.end_line) if chunk is not None else (None, None)
                    )
                    # The chunk says what was scored: the start, up to end_char.
                    out.append((Chunk(0, base, base + len(kept), *lines), kept))
                else:
                    self.windowed += 1
                    base = chunk.start_char if chunk is not None else 0
                    for start, end in tokenizer.windows(text, max_tokens, overlap):
                        lines = _window_lines(chunk, text, start, end)
                        window = Chunk(0, base + start, base + end, *lines)
                        out.append((window, text[start:end]))
            # Number the parts of this document in order, whatever split them.
            return [
                (None if chunk is None else _renumbered(chunk, number), text)
                for number, (chunk, text) in enumerate(out)
            ]

        return splitter


def _renumbered(chunk: Chunk, index: int) -> Chunk:
    return Chunk(index, chunk.start_char, chunk.end_char, chunk.start_line, chunk.end_line)


def _window_lines(
    chunk: Chunk | None, text: str, start: int, end: int
) -> tuple[int | None, int | None]:
    """The lines a window of ``text`` (the part ``chunk`` covers) spans: its own, not all of
    the chunk's, so that ``rerank files`` points at the passage that scored."""
    if chunk is None or chunk.start_line is None:
        return None, None
    first = chunk.start_line + text.count("\n", 0, start)
    return first, first + text.count("\n", start, max(end - 1, start))
