"""The router's HTTP client for its service calls: aiohttp, pooled keep-alive connections.

Why not httpx (which the rest of the code uses): under 32 concurrent requests httpx's connection
pool spent ~75% of the router's CPU (it walks every pooled connection, probing each socket, on
every request); the router is pure forwarding, so that was the router. aiohttp (already installed
as a KServe dependency) forwards the same bodies for a fraction of that; measured in
`components.bench`. The router only needs ``post``/``get`` returning status and bytes, so the
interface below is that small - and an ``httpx.AsyncClient`` satisfies it too (tests pass one with
a mock transport).

``Upstream`` is a service with several endpoints (the pods behind a Kubernetes Service) and a
``RetryPolicy`` (what Istio's VirtualService ``retries`` and DestinationRule ``outlierDetection``
do on a cluster): calls go round-robin over the endpoints; a try that fails to connect, is reset
or outlives ``per_try_timeout_s`` is retried on another endpoint, and that endpoint sits out for
``ejection_s``. Anything that answers - any status - is the answer: retrying on status codes would
change the graph's Hard/Soft semantics, which are the router's business, not the mesh's.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Iterable, Mapping

import aiohttp
import httpx

# What a failed call raises, whichever client the router was given.
CALL_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, httpx.HTTPError, OSError)

CONNECT_FAILURE = "connect-failure"
RESET = "reset"
RETRY_ON = frozenset({CONNECT_FAILURE, RESET})
# Nothing reached the service: always safe to send the request again.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, httpx.ConnectError,
                                                   httpx.ConnectTimeout, ConnectionRefusedError)


def failure_kind(exc: BaseException) -> str | None:
    """Envoy's names for a failed try: ``connect-failure`` (nothing was sent), ``reset`` (the
    connection dropped or the per-try timeout passed without an answer: Envoy's "disconnect/reset/
    read timeout"); None for anything else (not retried)."""
    if isinstance(exc, _CONNECT_ERRORS):
        return CONNECT_FAILURE
    if isinstance(exc, (TimeoutError, *CALL_ERRORS)):
        return RESET
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Istio's ``retries`` (``attempts`` = retries after the first try, ``perTryTimeout``,
    ``retryOn``) plus ``outlierDetection.baseEjectionTime`` as ``ejection_s`` (0: off).
    The default retries nothing: KServe's router alone fails a step on the first failed call."""

    attempts: int = 0
    per_try_timeout_s: float | None = None
    retry_on: frozenset[str] = RETRY_ON
    ejection_s: float = 0.0

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("retry attempts must be >= 0")
        if self.per_try_timeout_s is not None and self.per_try_timeout_s <= 0:
            raise ValueError("per-try timeout must be > 0")
        unknown = set(self.retry_on) - RETRY_ON
        if unknown:
            raise ValueError(f"unsupported retryOn {sorted(unknown)}; supported: {sorted(RETRY_ON)}")

    def retries(self, kind: str | None) -> bool:
        return kind is not None and kind in self.retry_on


class TriesFailed(Exception):
    """Every try of one call failed; ``last`` is the last try's exception."""

    def __init__(self, tries: list[tuple[str, BaseException]]):
        self.tries = tries
        self.last = tries[-1][1]
        super().__init__("; ".join(f"{url}: {_describe(exc)}" for url, exc in tries))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the per-try timeout"
    return f"{type(exc).__name__}: {exc}"


class Upstream:
    """One service's endpoints with round-robin picking, per-try retries and passive ejection."""

    def __init__(self, name: str, urls: Sequence[str], policy: RetryPolicy | None = None):
        if not urls:
            raise ValueError(f"service {name!r} has no endpoint")
        self.name = name
        self.urls = tuple(dict.fromkeys(urls))
        self.policy = policy or RetryPolicy()
        self._next = itertools.count()
        self._ejected_until: dict[str, float] = {}

    def pick(self, tried: Sequence[str] = ()) -> str:
        """Round-robin over endpoints not yet tried for this call and not ejected; an ejected or
        already tried one only when nothing else is left (never no endpoint: Envoy's panic mode)."""
        now = time.monotonic()
        start = next(self._next)
        order = [self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls))]
        for usable in (lambda u: u not in tried and self._ejected_until.get(u, 0.0) <= now,
                       lambda u: u not in tried,
                       lambda u: True):
            for url in order:
                if usable(url):
                    return url
        raise AssertionError("unreachable")  # pragma: no cover

    def eject(self, url: str) -> None:
        if self.policy.ejection_s > 0 and len(self.urls) > 1:
            self._ejected_until[url] = time.monotonic() + self.policy.ejection_s

    async def post(self, client: "ServiceClient", content: bytes,
                   headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> tuple[str, "Reply"]:
        """(endpoint, reply) of the first try that got an answer; raises ``TriesFailed``. The caller
        bounds the whole call (Istio's route timeout); each try is bounded by the per-try timeout."""
        headers = _headers(headers)
        tried: list[tuple[str, BaseException]] = []
        for _ in range(self.policy.attempts + 1):
            url = self.pick([u for u, _ in tried])
            try:
                async with asyncio.timeout(self.policy.per_try_timeout_s):
                    return url, await client.post(url, content=content, headers=headers)
            except (TimeoutError, *CALL_ERRORS) as exc:
                tried.append((url, exc))
                kind = failure_kind(exc)
                if kind is not None:
                    self.eject(url)
                if not self.policy.retries(kind):
                    break
        raise TriesFailed(tried)


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    content: bytes


class ServiceClient:
    """No client-side timeout (the router applies its own step and graph timeouts), no proxies or
    cookies from the environment (services are addressed directly), no redirects."""

    def __init__(self, max_connections: int = 100, keepalive_s: float = 60.0):
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the event loop that runs it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_s,
                                             ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  timeout=aiohttp.ClientTimeout(total=None),
                                                  auto_decompress=False)
        return self._session

    async def post(self, url: str, *, content: bytes,
                   headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> Reply:
        async with self._get_session().post(url, data=content, headers=_headers(headers),
                                            allow_redirects=False) as resp:
            return Reply(resp.status, await resp.read())

    async def get(self, url: str, *, timeout: float | None = None) -> Reply:
        async with self._get_session().get(url, allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return Reply(resp.status, await resp.read())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "ServiceClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def _headers(headers) -> list[tuple[str, str]] | None:
    if headers is None:
        return None
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)
