"""The router's HTTP client for its service calls: aiohttp, pooled keep-alive connections.

Why not httpx (which the rest of the code uses): under 32 concurrent requests httpx's connection
pool spent ~75% of the router's CPU (it walks every pooled connection, probing each socket, on
every request); the router is pure forwarding, so that was the router. aiohttp (already installed
as a KServe dependency) forwards the same bodies for a fraction of that; measured in
`components.bench`. The router only needs ``post``/``get`` returning status and bytes, so the
interface below is that small - and an ``httpx.AsyncClient`` satisfies it too (tests pass one with
a mock transport).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import aiohttp
import httpx

# What a failed call raises, whichever client the router was given.
CALL_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, httpx.HTTPError, OSError)


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
