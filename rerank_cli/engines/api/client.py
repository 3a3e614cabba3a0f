"""One rerank request, made reliably: retries with the server's hints or jittered backoff, and
every failure turned into the exception tree, network failures in the user's words.

HTTP is httpx's own stack (httpcore on anyio): proxies (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
NO_PROXY) and CA bundles (SSL_CERT_FILE, SSL_CERT_DIR) come from the environment. A transport
may be injected instead: the test seam, with no proxies then (httpx reads them only for its own
transports)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import orjson

from rerank_cli import __version__
from rerank_cli.engines.api import protocol
from rerank_cli.engines.api.pacing import Pacer, RateLimits, read_rate_limits
from rerank_cli.engines.interface import Stats
from rerank_cli.errors import ApiFailed, ApiRefused, BadResponse, RequestTooLarge, UsageError
from rerank_cli.providers.profile import DEFAULT_PROFILE
from rerank_cli.settings.resolution import Settings, check_transport_security, is_loopback

if TYPE_CHECKING:
    import httpx
    from httpx._utils import URLPattern

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# A hold of the whole session this long (a rate limit used up) is said on stderr, as a retry is.
LONG_HOLD_SECONDS = 5.0
# The statuses whose Retry-After (RFC 9110, RFC 6585) says when the server takes requests again:
# the whole session waits, not only the request that got it.
SESSION_WAIT_STATUSES = frozenset({429, 503})
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
    """Import what the first request would now: httpx, httpcore (which httpx's transport
    imports when it is built, and which brings h11 and anyio), and anyio's asyncio backend
    (which anyio imports on the first connection): ~0.15 s of start-up that would otherwise
    land in the middle of the first round of requests."""
    import importlib

    import httpcore  # noqa: F401
    import httpx  # noqa: F401

    # By the name anyio itself imports it by; a head start only, so a rename costs nothing.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")


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
                import email.utils  # an HTTP date is rare: loaded when one comes

                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return protocol.error_retry_after(body)


def tls_verification(base_url: str) -> ssl.SSLContext | bool:
    """``verify=`` for a client of ``base_url``. For https://, True: httpx's own context, with
    the CA bundle of SSL_CERT_FILE, SSL_CERT_DIR or certifi (loading it takes 30-80 ms).

    For http://, that context would never be used: the client asks for URLs under the base URL
    only and follows no redirect, and through a proxy an http:// URL is forwarded, not
    tunnelled; the TLS to an https:// proxy is httpcore's own (its default context, which
    honours SSL_CERT_FILE through OpenSSL), whatever ``verify`` is. So a context that verifies
    certificates but trusts no CA stands in: free to make, and failing closed if ever used."""
    if base_url.lower().startswith("https:"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no CA


def environment_proxies() -> list[tuple[URLPattern, httpx.URL | None]]:
    """The proxies httpx's client takes from the environment (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY, in either case), most specific pattern first, as it matches them:
    the client keeps them to itself."""
    import httpx
    from httpx._utils import URLPattern, get_environment_proxies

    found = sorted((URLPattern(key), url) for key, url in get_environment_proxies().items())
    return [(pattern, None if url is None else httpx.URL(url)) for pattern, url in found]


def key_rejected(settings: Settings, said: str | None) -> str:
    """A 401, in terms of the key in use: where it came from and what it looks like (masked),
    so that the user does not set again the variable that holds the rejected key."""
    from rerank_cli.redact import mask

    server = f" (the server said: {said})" if said else ""
    if not settings.api_key:
        variable = (settings.profile.key_env or ("RERANK_API_KEY",))[0]
        fix = f"set {variable}"
        if settings.profile.name == DEFAULT_PROFILE:
            fix += " or run: rerank config set api_key …"
        return f"{settings.host} wants an API key — {fix}{server}"
    origin = settings.api_key_origin or "the settings"
    origin = origin.lstrip("$") if origin.startswith("$") else origin
    return (
        f"the API key from {origin} ({mask(settings.api_key)}) was rejected by "
        f"{settings.host}{server}"
    )


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


E = TypeVar("E", bound=BaseException)

# OpenSSL's verify codes for "no trusted root for this chain": a CA bundle would fix them.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, …


def address(url: httpx.URL) -> str:
    """``host:port`` of a URL, the port explicit (``[::1]:443`` for IPv6)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def _cause(error: BaseException, kind: type[E], explained: bool = False) -> E | None:
    """The first exception of ``kind`` in the chain of ``error`` (itself, then what it was
    raised from or during); ``explained``: the first with an OS error text (``strerror``)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and not any(current is other for other in seen):
        if isinstance(current, kind) and (not explained or getattr(current, "strerror", None)):
            return current
        seen.append(current)
        current = current.__cause__ or current.__context__
    return None


def network_failure(
    error: httpx.TransportError, url: httpx.URL, proxy: httpx.URL | None, settings: Settings
) -> str:
    """What went wrong, in the user's words: which host refused or could not be found, whose
    certificate was not trusted, which proxy said no — never a protocol library's state. Names
    hosts and ports only (no credentials, no query strings)."""
    import httpx

    s = settings
    via = f"the proxy at {address(proxy)}" if proxy is not None else None
    if isinstance(error, httpx.ProxyError):  # the proxy answered CONNECT with an error status
        status = re.match(r"\d{3}\b", str(error))
        said = f"HTTP {status.group()}" if status else "an error"
        return f"{via or 'the proxy'} refused the connection ({said})"
    certificate = _cause(error, ssl.SSLCertVerificationError)
    tls = _cause(error, ssl.SSLError)
    if certificate is not None or tls is not None:
        # Over an http:// URL, only a proxy's TLS can fail; over https://, most likely the
        # server's, through the tunnel (an https:// proxy's own certificate could be it too).
        whose = url.host
        if proxy is not None and proxy.scheme == "https":
            whose = f"{via}" if url.scheme == "http" else f"{url.host} (or of {via})"
        if certificate is not None:
            reason = certificate.verify_message or str(certificate)
            if certificate.verify_code in _UNTRUSTED:
                return (
                    f"TLS certificate of {whose} not trusted ({reason}); "
                    "set SSL_CERT_FILE to your CA bundle"
                )
            return f"TLS certificate of {whose} rejected ({reason})"
        assert tls is not None
        reason = (tls.reason or str(tls)).replace("_", " ").lower()
        return f"TLS with {whose} failed ({reason})"
    if isinstance(error, httpx.ConnectTimeout):
        return f"could not connect{' to ' + via if via else ''} within {s.timeout:g} s"
    if isinstance(error, httpx.ReadTimeout):
        # A read may take the cold-model wait on top (see RerankClient.__aenter__).
        return f"no answer within {s.timeout + s.wait_cold:g} s"
    if isinstance(error, httpx.TimeoutException):  # writing the request
        return f"no answer within {s.timeout:g} s"
    if isinstance(error, httpx.ConnectError):
        # Through a proxy, the only connection this machine opens is to the proxy.
        where = proxy if proxy is not None else url
        dns = _cause(error, socket.gaierror)
        refused = _cause(error, ConnectionRefusedError)
        if dns is not None:
            reason = f"DNS lookup failed for {where.host}"
            if dns.strerror:
                reason += f": {dns.strerror}" if via else f" ({dns.strerror})"
        elif refused is not None:
            reason = "connection refused" if via else f"connection refused by {address(where)}"
        else:
            failed = _cause(error, OSError, explained=True)  # ENETUNREACH, EHOSTUNREACH, …
            why = failed.strerror if failed is not None and failed.strerror else "failed"
            reason = why.lower() if via else f"cannot connect to {address(where)} ({why.lower()})"
        return f"cannot reach {via} ({reason})" if via else reason
    if isinstance(error, httpx.RemoteProtocolError):
        text = str(error).lower()
        if text.startswith("server disconnected without sending a response"):
            return "the server closed the connection without answering"
        if "without sending complete message body" in text:
            return "the server closed the connection before the answer was complete"
        return "the server's answer is not valid HTTP"
    if isinstance(error, httpx.LocalProtocolError):  # its text may quote a header: the key
        return "the request is not valid HTTP (a stray character in the API key or a header?)"
    if isinstance(error, httpx.NetworkError):  # reading or writing an open connection
        if _cause(error, ConnectionResetError) is not None:
            return "the server reset the connection"
        failed = _cause(error, OSError, explained=True)
        if failed is None or isinstance(failed, BrokenPipeError) or not failed.strerror:
            return "the server closed the connection"
        return f"the connection failed ({failed.strerror.lower()})"
    return f"connection failed ({type(error).__name__})"


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
        # Every request of the client (of the session) passes this gate: adaptive concurrency
        # under -j, and the pauses servers ask for (see pacing.py).
        self.pacer = Pacer(settings.concurrency, sleep)
        self._hold_said = 0  # the pause last said on stderr (its pause_id)
        self._proxies: list[tuple[URLPattern, httpx.URL | None]] = []
        self._tls = True

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
        # A held request (Prefer: wait) may legitimately take wait_cold longer to answer. No
        # limit on waiting for a free connection: callers may start more requests than there
        # are connections (a long-lived session), and a queued request has not failed; with
        # one, it would fail whenever no connection frees within `timeout` (all held by a
        # cold model, say).
        timeout = httpx.Timeout(s.timeout, read=s.timeout + s.wait_cold, pool=None)
        limits = httpx.Limits(
            max_connections=s.concurrency, max_keepalive_connections=s.concurrency
        )
        # What httpx itself reads from the environment, for messages and the check below.
        self._proxies = environment_proxies() if self._transport is None else []
        proxy = self._proxy_for(httpx.URL(s.base_url))
        if (
            proxy is not None
            and s.base_url.lower().startswith("http:")
            and s.api_key
            and not s.allow_insecure
            and not is_loopback(str(proxy))
        ):
            raise UsageError(
                f"refusing to send the API key in clear text to the proxy at {address(proxy)} "
                f"(http://{s.host}); add {httpx.URL(s.base_url).host} to NO_PROXY, use "
                "https://, or --allow-insecure if you mean it"
            )
        self._tls = s.base_url.lower().startswith("https:")
        self._http = httpx.AsyncClient(
            transport=self._transport,  # None: httpx's own, with the environment's proxies
            trust_env=True,
            verify=tls_verification(s.base_url),
            timeout=timeout,
            limits=limits,
            headers=self.headers(),
            follow_redirects=False,
        )
        return self

    def _proxy_for(self, url: httpx.URL) -> httpx.URL | None:
        """The proxy httpx sends a request for ``url`` through, if any (once entered)."""
        for pattern, proxy in self._proxies:
            if pattern.matches(url):
                return proxy
        return None

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
        # Every URL is under the base URL (see tls_verification): an https:// one here on a
        # client built for http:// would fail verification, as the context trusts nothing.
        assert self._tls or not url.lower().startswith("https:"), "https:// on an http:// client"
        s = self.settings
        # The usage counters are the ranking's: a GET (a price, a listing) is not counted.
        stats = self.stats if method == "POST" else Stats()
        if quick:
            s = replace(s, max_retries=0, timeout=min(s.timeout, 10.0), wait_cold=0)
        timeout = httpx.Timeout(s.timeout) if quick else httpx.USE_CLIENT_DEFAULT
        last_failure = "no attempt made"
        last_status: int | None = None  # the last failure's HTTP status (None: the network)
        pacer = self.pacer
        for attempt in range(s.max_retries + 1):
            ticket = await pacer.acquire()
            status: int | None = None  # of an answer, and its rate limits: for the pacer
            limits: RateLimits | None = None
            stats.requests += 1
            stats.bytes_sent += len(body)
            try:
                response = await self._http.request(
                    method, url, content=body or None, params=params, timeout=timeout
                )
                status = response.status_code
                elapsed = pacer.elapsed(ticket)
                limits = read_rate_limits(response.headers, MAX_HINT_SECONDS, elapsed=elapsed)
            except httpx.TransportError as error:
                target = httpx.URL(url)
                last_failure = network_failure(error, target, self._proxy_for(target), s)
                last_status = None
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
                last_status = status
                hint = retry_hint(response.headers, content)
                wait = self.backoff(attempt) if hint is None else min(hint, MAX_HINT_SECONDS)
                if hint is not None and status in SESSION_WAIT_STATUSES:
                    pacer.pause(wait)  # every request of the session waits, not this one only
            finally:
                pacer.release(ticket, status, limits)
                if status is not None and status != 429:  # a 429's wait is said as a retry
                    self._say_hold()
            if attempt == s.max_retries:
                break
            stats.retries += 1
            wait = max(wait, pacer.waiting())
            if self._notify is not None:
                self._notify(f"{last_failure}; retrying in {wait:.1f} s")
            await pacer.wait_out_pause(wait)
        tries = s.max_retries + 1
        shown = without_credentials(url)
        raise ApiFailed(
            f"{shown}: failed after {tries} attempt{'s' * (tries > 1)}: {last_failure}", last_status
        )

    def _say_hold(self) -> None:
        """Say a long hold that an answer's rate-limit headers started, once: a terminal left
        blank for a minute looks like a hang."""
        held = self.pacer.waiting()
        pause = self.pacer.window.pause_id
        if self._notify is None or held < LONG_HOLD_SECONDS or pause == self._hold_said:
            return
        self._hold_said = pause
        self._notify(f"the rate limit of {self.settings.host} is used up; waiting {held:.0f} s")

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
            return ApiRefused(key_rejected(s, message), status)
        if status == 402:
            return ApiRefused(f"out of credit at {s.host}", status)
        if status == 404:
            said = f" (the server said: {message})" if message else ""
            return ApiRefused(f"model {s.model} is not served by {s.display_url}{said}", status)
        if status < 500:
            return ApiRefused(f"the API refused the request (HTTP {status}): {quoted}", status)
        return ApiFailed(f"the API failed (HTTP {status}): {quoted}", status)
