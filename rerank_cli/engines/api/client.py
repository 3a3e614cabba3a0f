"""One rerank request, made reliably: retries with the server's hints or jittered backoff, and
every failure turned into the exception tree. The transport is injectable (the test seam)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from rerank_cli import __version__
from rerank_cli.engines.api import protocol
from rerank_cli.engines.interface import Stats
from rerank_cli.errors import ApiFailed, ApiRefused, BadResponse, RequestTooLarge
from rerank_cli.settings.resolution import Settings, check_transport_security

if TYPE_CHECKING:
    import httpx

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# A server's hint is obeyed up to this many seconds; longer, and we would rather fail visibly.
MAX_HINT_SECONDS = 120.0
# Only a message about the request's size or document count means "split the batch": a query
# or a single document over a limit is another matter (splitting would not help).
_TOO_LARGE = re.compile(
    r"(too many|too large|too big|exceed\w*|over the limit)\W+(?:\w+\W+){0,3}?"
    r"(documents?|texts?|inputs|items|batch)"
    r"|(request|payload|body|batch|documents|texts)\W+(?:\w+\W+){0,3}?"
    r"(too (large|long|big|many)|exceed\w*)"
    r"|entity too large|batch size|less than \d+ (elements|documents|texts)",
    re.I,
)

Sleep = Callable[[float], Awaitable[None]]


def load_http_stack() -> None:
    """Import what the first request would (httpx, h11, our transport) now: ~0.1 s of start-up
    that would otherwise land in the middle of the first round of requests."""
    import httpx  # noqa: F401

    import rerank_cli.engines.api.transport  # noqa: F401


def retry_hint(headers: httpx.Headers, body: bytes, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``Retry-After`` (seconds or an
    HTTP date), or ``error.retry_after_s`` in a JSON body — the first present wins."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return protocol.error_retry_after(body)


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


class RerankClient:
    """An ``httpx.AsyncClient`` with keep-alive, used as ``async with RerankClient(...)``."""

    def __init__(
        self,
        settings: Settings,
        stats: Stats | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats or Stats()
        self._transport = transport
        self._sleep = sleep
        self._rng = rng
        self._notify = notify
        self._http: httpx.AsyncClient | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"rerank-cli/{__version__}",
        }
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        if self.settings.wait_cold > 0:
            headers["Prefer"] = f"wait={self.settings.wait_cold}"
        if self.settings.tier != "realtime":
            headers["X-Tier"] = self.settings.tier
        return headers

    async def __aenter__(self) -> RerankClient:
        import httpx

        s = self.settings
        # Every request passes here: no command can send the key in clear text off this
        # machine, or to a malformed URL, whatever engine it was asked for.
        check_transport_security(s)
        # A held request (Prefer: wait) may legitimately take wait_cold longer to answer.
        timeout = httpx.Timeout(s.timeout, read=s.timeout + s.wait_cold)
        limits = httpx.Limits(
            max_connections=s.concurrency, max_keepalive_connections=s.concurrency
        )
        # Loading the CA bundle takes ~80 ms. A plain-http base URL never opens a TLS connection
        # (the client posts to that URL only, and follows no redirect), so it skips that.
        tls = s.rerank_url.lower().startswith("https:")
        transport = self._transport
        if transport is None:
            from rerank_cli.engines.api.transport import Http11Transport

            context = httpx.create_ssl_context() if tls else None
            transport = Http11Transport(context, max_idle=s.concurrency)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            limits=limits,
            headers=self.headers(),
            verify=tls,
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)]."""
        s = self.settings
        # 2.0**1024 overflows a float; the cap is reached long before 2**60 anyway.
        return self._rng() * min(s.backoff_cap, s.backoff_base * 2.0 ** min(attempt, 60))

    async def rerank(
        self, query: str, texts: Sequence[str], settings: Settings | None = None
    ) -> list[float]:
        """Scores for ``texts``, in order; ``settings`` shape the request when a call differs
        from the client's (another instruction). Raises :class:`RequestTooLarge` for the caller
        to split the batch, :class:`ApiRefused` or :class:`ApiFailed` otherwise."""
        s = self.settings
        body = protocol.Shape.of(settings or s).body(query, texts)
        content = await self._send("POST", s.rerank_url, body=body)
        return protocol.parse_response(content, len(texts))

    async def get_json(
        self, url: str, params: Mapping[str, str] | None = None, quick: bool = False
    ) -> Any:
        """``GET url`` (``/models``, ``/account``) with the same retries and errors; the JSON
        body. ``params`` may hold the key (``/account?key=``): messages name ``url`` only.
        ``quick``: one try within 10 s, for a nicety such as a price."""
        content = await self._send("GET", url, params=params, quick=quick)
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            raise BadResponse(
                f"unexpected response from API: invalid JSON: {protocol.excerpt(content)}"
            ) from None

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        params: Mapping[str, str] | None = None,
        quick: bool = False,
    ) -> bytes:
        """The body of a 2xx answer, after retries; every failure as the exception tree."""
        import httpx

        assert self._http is not None, "use RerankClient as an async context manager"
        s = self.settings
        # The usage counters are the ranking's: a GET (a price, a listing) is not counted.
        stats = self.stats if method == "POST" else Stats()
        if quick:
            s = replace(s, max_retries=0, timeout=min(s.timeout, 10.0), wait_cold=0)
        timeout = httpx.Timeout(s.timeout) if quick else httpx.USE_CLIENT_DEFAULT
        last_failure = "no attempt made"
        for attempt in range(s.max_retries + 1):
            stats.requests += 1
            stats.bytes_sent += len(body)
            try:
                response = await self._http.request(
                    method, url, content=body or None, params=params, timeout=timeout
                )
            except httpx.ConnectTimeout:
                last_failure = f"could not connect within {s.timeout:g} s"
                wait = self.backoff(attempt)
            except httpx.TimeoutException as error:
                # A read may take the cold-model wait on top (see __aenter__).
                limit = (
                    s.timeout + s.wait_cold if isinstance(error, httpx.ReadTimeout) else s.timeout
                )
                last_failure = f"no answer within {limit:g} s"
                wait = self.backoff(attempt)
            except httpx.TransportError as error:
                last_failure = f"connection failed ({type(error).__name__}: {error})".replace(
                    ": )", ")"
                )
                wait = self.backoff(attempt)
            except httpx.DecodingError as error:  # e.g. a body that is not the gzip it claims
                raise BadResponse(
                    f"unexpected response from API: undecodable body ({error})"
                ) from None
            else:
                status = response.status_code
                content = response.content
                if 200 <= status < 300:
                    return content
                message = protocol.error_message(content)
                if status not in RETRY_STATUSES:
                    raise self._refusal(status, message, url if method == "GET" else None)
                last_failure = f"HTTP {status}" + (f" ({message})" if message else "")
                hint = retry_hint(response.headers, content)
                wait = self.backoff(attempt) if hint is None else min(hint, MAX_HINT_SECONDS)
            if attempt == s.max_retries:
                break
            stats.retries += 1
            if self._notify is not None:
                self._notify(f"{last_failure}; retrying in {wait:.1f} s")
            await self._sleep(wait)
        tries = s.max_retries + 1
        shown = without_credentials(url)
        raise ApiFailed(f"{shown}: failed after {tries} attempt{'s' * (tries > 1)}: {last_failure}")

    def _refusal(self, status: int, message: str | None, fetched: str | None = None) -> Exception:
        """The exception for a status that is not retried; ``fetched``: the URL of a GET (its
        404 is a missing page, not a missing model)."""
        s = self.settings
        quoted = message or f"HTTP {status}"
        if fetched is not None and status == 404:
            return ApiRefused(f"{fetched} not found (HTTP 404): {quoted}", status)
        if status == 413 or (status in (400, 422) and message and _TOO_LARGE.search(message)):
            return RequestTooLarge(f"request too large for {s.host}: {quoted}", status)
        if status == 401:
            variable = (s.profile.key_env or ("RERANK_API_KEY",))[0]
            fix = f"set {variable}"
            if s.profile.name == "gigarouter":
                fix += " or run: rerank config set api_key …"
            return ApiRefused(f"API key missing or rejected — {fix}", status)
        if status == 402:
            return ApiRefused(f"out of credit at {s.host}", status)
        if status == 404:
            said = f" (the server said: {message})" if message else ""
            return ApiRefused(f"model {s.model} is not served by {s.display_url}{said}", status)
        if status < 500:
            return ApiRefused(f"the API refused the request (HTTP {status}): {quoted}", status)
        return ApiFailed(f"the API failed (HTTP {status}): {quoted}", status)
