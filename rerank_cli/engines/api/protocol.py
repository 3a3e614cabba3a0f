"""The rerank wire format: the request body, and a strict reading of the response.

Accepted responses: ``{"results": [{index, relevance_score|score}]}`` (gigarouter, Cohere, Jina,
vLLM, infinity …), ``{"data": [...]}`` (Voyage) and a bare list ``[{index, score}]`` (TEI).
Each must give exactly one finite score per document sent.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from rerank_cli.errors import BadResponse
from rerank_cli.providers.instructions import deliver, document_affixes
from rerank_cli.providers.profile import BUILTIN, DEFAULT_PROFILE, Profile

if TYPE_CHECKING:
    from rerank_cli.settings.schema import Settings

BODY_EXCERPT = 200


def valid_utf8(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes that Python kept, e.g. from a command
    line argument) as U+FFFD: JSON cannot carry them."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return valid_utf8(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def encode(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # only lone surrogates make a str unencodable
        return orjson.dumps(_clean(body))


def build_body(
    profile: Profile,
    model: str,
    query: str,
    texts: Sequence[str],
    instruction: str | None,
    mode: str,
    *,
    max_tokens_per_doc: int | None = None,
) -> dict[str, Any]:
    """The JSON body of one rerank request.

    Never a ``top_n`` (``top_k``): a run splits the documents into batches and ranks them all
    together, so every batch must return the score of every document it sent; a per-batch top n
    would drop documents that belong in the global top n. ``max_tokens_per_doc`` is the limit
    documents were chunked to (default: the profile's), sent where the profile names a field.
    """
    query, texts, instruction_fields = deliver(
        mode, instruction, query, texts, profile.instruction_field
    )
    body: dict[str, Any] = {}
    if profile.send_model:
        body["model"] = model
    body["query"] = query
    body[profile.documents_field] = list(texts)
    body.update(instruction_fields)
    body.update(profile.extra_fields)
    limit = profile.max_tokens_per_doc if max_tokens_per_doc is None else max_tokens_per_doc
    if profile.doc_limit_field and limit is not None:
        body[profile.doc_limit_field] = limit
    return body


@dataclass(frozen=True)
class Shape:
    """How one provider wants a request: its profile, the model, and the instruction with its
    delivery mode (which may rewrite the query and wrap each document)."""

    profile: Profile = field(default_factory=lambda: BUILTIN[DEFAULT_PROFILE])
    model: str = BUILTIN[DEFAULT_PROFILE].model
    instruction: str | None = None
    mode: str = "none"
    max_tokens_per_doc: int | None = None  # sent where the profile names a field (Cohere)

    @classmethod
    def of(cls, settings: Settings) -> Shape:
        return cls(
            settings.profile,
            settings.model,
            settings.instruction,
            settings.instruction_mode,
            settings.max_tokens,
        )

    def body(self, query: str, texts: Sequence[str]) -> bytes:
        return encode(
            build_body(
                self.profile,
                self.model,
                query,
                texts,
                self.instruction,
                self.mode,
                max_tokens_per_doc=self.max_tokens_per_doc,
            )
        )

    def overhead(self, query: str) -> int:
        """Bytes of a request with no documents."""
        return len(self.body(query, []))

    def cost(self, text: str) -> int:
        """Bytes one document adds to a request (its JSON string and a comma)."""
        return len(encode(self.sent_document(text))) + 1

    def cost_bound(self, chars: int) -> int:
        """The most bytes a document of ``chars`` characters can add: JSON escapes a character
        into at most 6 bytes (``\\u001f``), and UTF-8 needs at most 4."""
        return self.cost("") + 6 * chars

    def sent_query(self, query: str) -> tuple[str, dict[str, str]]:
        """The query as sent, and the request fields that carry the instruction (field mode)."""
        sent, _, fields = deliver(
            self.mode, self.instruction, query, (), self.profile.instruction_field
        )
        return sent, fields

    def sent_document(self, text: str) -> str:
        """A document as sent (template mode wraps it in the prompt)."""
        prefix, suffix = document_affixes(self.mode)
        return f"{prefix}{text}{suffix}" if prefix or suffix else text


def build_request(model: str, query: str, texts: Sequence[str]) -> bytes:
    """A plain gigarouter request, with no instruction."""
    return Shape(model=model).body(query, texts)


def request_overhead(model: str, query: str) -> int:
    return Shape(model=model).overhead(query)


def document_cost(text: str) -> int:
    return Shape().cost(text)


def excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > BODY_EXCERPT else "")


def _bad(reason: str, body: bytes) -> BadResponse:
    return BadResponse(f"unexpected response from API: {reason}: {excerpt(body)}")


def _items(payload: Any) -> list[Any] | None:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("results", "data"):
            if isinstance(payload.get(key), list):
                return list(payload[key])
    return None


def _well_formed(items: list[Any], count: int) -> list[float] | None:
    """The scores of a well-formed answer, checked a column at a time (this runs for every
    batch, on the event loop: twice as fast as the item-by-item loop); None if anything is
    off, for that loop to say what."""
    if len(items) != count or not all(type(item) is dict for item in items):
        return None
    key = "relevance_score" if count and "relevance_score" in items[0] else "score"
    try:
        indexes = [item["index"] for item in items]
        values = [item[key] for item in items]
    except KeyError:
        return None
    # Exact types: orjson makes exact ints and floats, and a bool is neither.
    if not all(type(i) is int for i in indexes) or sorted(indexes) != list(range(count)):
        return None
    if not all((type(v) is float or type(v) is int) and math.isfinite(v) for v in values):
        return None
    scores = [0.0] * count
    for index, value in zip(indexes, values, strict=True):
        scores[index] = float(value)
    return scores


def parse_response(body: bytes, count: int) -> list[float]:
    """The scores, in the order of the documents sent; raises :class:`BadResponse`."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        page = html_page(body)
        if page is not None:  # a proxy's error page or a login portal, answered with a 200
            raise BadResponse(
                "unexpected response from API: an HTML page, not JSON (a proxy or a login page "
                f"in the way?): {page}"
            ) from None
        payload = _with_bare_constants(body)  # NaN, Infinity: the item check says which index
        if payload is None:
            raise _bad(f"invalid JSON ({str(error).split(':', 1)[0]})", body) from None
    items = _items(payload)
    if items is None:
        raise _bad("no results list", body)
    fast = _well_formed(items, count)
    if fast is not None:
        return fast
    # Something is wrong: find what, item by item, to say so.
    scores: list[float | None] = [None] * count
    # Exact type checks (orjson makes exact dicts, ints and floats): they also keep out bools,
    # and this loop runs for every document scored.
    for item in items:
        if type(item) is not dict:
            raise _bad("a result is not an object", body)
        index = item.get("index")
        if type(index) is not int:
            raise _bad("a result has no integer index", body)
        if not 0 <= index < count:
            raise _bad(f"index {index} out of range for {count} documents", body)
        if scores[index] is not None:
            raise _bad(f"index {index} appears twice", body)
        score = item["relevance_score"] if "relevance_score" in item else item.get("score")
        if type(score) is not float and type(score) is not int:
            raise _bad(f"index {index} has no numeric score", body)
        if not math.isfinite(score):
            raise _bad(f"index {index} has a non-finite score", body)
        scores[index] = float(score)
    if None in scores:
        missing = scores.count(None)
        raise _bad(f"{missing} of {count} documents have no score", body)
    return scores  # type: ignore[return-value]  # no None left


def error_message(body: bytes) -> str | None:
    """The server's own words from an error body, in any of the shapes providers use."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        page = html_page(body)
        if page is not None:  # a proxy's error page: its title, not its markup
            return f"an HTML page: {page}"
        text = body.decode("utf-8", errors="replace").strip()
        return excerpt(text.encode()) if text else None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    for value in (error, payload.get("message"), payload.get("detail")):
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and isinstance(value[0], dict):
            # FastAPI/pydantic detail; any item may be other than an object
            return "; ".join(str(v.get("msg", v) if isinstance(v, dict) else v) for v in value[:3])
    return None


_HTML_START = re.compile(
    rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|title)\b", re.I | re.S
)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_HTML_HEADING = re.compile(rb"<h1[^>]*>(.*?)</h1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def html_page(body: bytes) -> str | None:
    """What an HTML page says, in one short line (its title, else its first heading, else its
    text), if ``body`` is one; None otherwise. Proxies and gateways (nginx, Cloudflare, a
    corporate proxy's login page) answer in HTML, whatever the API would have said."""
    head = body[:4096]
    if not _HTML_START.match(head):
        return None
    found = _HTML_TITLE.search(body) or _HTML_HEADING.search(body)
    markup = (found.group(1) if found else body).decode("utf-8", errors="replace")
    text = " ".join(html.unescape(_TAG.sub(" ", markup)).split())
    if len(text) > 100:
        text = text[:100].rstrip() + "…"
    return text or "(no title)"


def _with_bare_constants(body: bytes) -> Any:
    """``body`` read as Python's json reads it, which takes the bare ``NaN`` and ``Infinity``
    that some servers write for a score (not JSON); None if it is not even that."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def error_retry_after(body: bytes) -> float | None:
    """``error.retry_after_s`` from a gigarouter error body."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    value = error.get("retry_after_s") if isinstance(error, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
