"""The public keys a client registered for `private_key_jwt`: inline `jwks`, or a `jwks_uri`
fetched with limits (RFC 7591 §2 `jwks_uri`; RFC 9700 §4.13 on fetching URLs from metadata).

Fetches use https (plain http only to loopback hosts), no redirects, no proxy from the environment,
no content-encoding, one time limit for the whole fetch and a size limit, and are cached per URI.
A `kid` that is not in the cached set triggers at most one refetch per `_REFETCH_INTERVAL`, so a
stream of bogus assertions cannot turn the server into a request pump.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from authgate.jose import JoseError, JWKSet
from authgate.server.config import HttpSettings, is_loopback_host
from authgate.server.models import Client

__all__ = ["ClientKeyError", "ClientKeys", "check_jwks_uri", "check_remote_jwks_uri"]

_log = logging.getLogger("authgate.server.client_jwks")
_REFETCH_INTERVAL = 30


class ClientKeyError(Exception):
    """The client's keys cannot be obtained or are unusable (detail for logs only)."""


def check_jwks_uri(uri: str) -> str | None:
    """Why `uri` cannot be a client's jwks_uri, or None when it can."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "jwks_uri is not a URL"
    if parts.fragment or not parts.hostname:
        return "jwks_uri must be an absolute URL without a fragment"
    if "@" in parts.netloc:
        return "jwks_uri must not contain userinfo"  # no credentials in URLs (RFC 9700 §4.1)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return None
    return "jwks_uri must use https (plain http only on a loopback host)"


def check_remote_jwks_uri(uri: str) -> str | None:
    """`check_jwks_uri`, and for a jwks_uri that a client registered itself (RFC 7591): https to
    a host that is not an IP literal of this machine or a private, link-local or reserved
    network, so that a registration cannot point the server's fetches at internal services
    (server-side request forgery). A DNS name is not resolved here; see docs/clients.md."""
    problem = check_jwks_uri(uri)
    if problem:
        return problem
    host = urlsplit(uri).hostname or ""
    if urlsplit(uri).scheme != "https" or host == "localhost" or host.endswith(".localhost"):
        return "jwks_uri must use https to a public host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "jwks_uri must use https to a public host, not a private or local address"
    return None


@dataclass(slots=True)
class _Entry:
    keys: JWKSet
    fetched_at: float


class ClientKeys:
    """Resolves a client's verification keys, fetching and caching `jwks_uri` documents."""

    def __init__(self, settings: HttpSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._http = httpx.AsyncClient(
            follow_redirects=False, timeout=settings.jwks_fetch_timeout, trust_env=False
        )

    async def keys_for(self, client: Client, *, kid_missing: str | None = None) -> JWKSet:
        """The client's keys. `kid_missing`: a kid the last set lacked (may trigger a refetch)."""
        if client.jwks is not None:
            try:
                return JWKSet.from_dict(client.jwks)
            except JoseError as exc:
                raise ClientKeyError(f"registered jwks unusable: {exc}") from None
        if client.jwks_uri is None:
            raise ClientKeyError("client has neither jwks nor jwks_uri")
        uri = client.jwks_uri
        entry = self._cache.get(uri)
        now = self._clock()
        fresh = entry is not None and now - entry.fetched_at < self._settings.jwks_fetch_cache_ttl
        refetch = (
            kid_missing is not None
            and entry is not None
            and entry.keys.get(kid_missing) is None
            and now - entry.fetched_at >= _REFETCH_INTERVAL
        )
        if entry is not None and fresh and not refetch:
            return entry.keys
        async with self._locks.setdefault(uri, asyncio.Lock()):
            current = self._cache.get(uri)
            if current is not None and current is not entry:
                return current.keys  # another request fetched it meanwhile
            keys = await self._fetch(uri)
            self._cache[uri] = _Entry(keys, self._clock())
            return keys

    async def _fetch(self, uri: str) -> JWKSet:
        problem = check_jwks_uri(uri)
        if problem:
            raise ClientKeyError(problem)
        limit = self._settings.jwks_fetch_max_bytes
        # httpx's timeout bounds each read, not the whole fetch: a server that sends a byte now
        # and then would hold the lock (and every assertion of this client) for hours.
        # Compressed bodies are refused: one chunk could inflate far past `limit` in memory.
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        try:
            async with asyncio.timeout(self._settings.jwks_fetch_timeout):
                async with self._http.stream("GET", uri, headers=headers) as r:
                    if r.status_code != 200:
                        raise ClientKeyError(f"jwks_uri answered {r.status_code}")
                    encoding = r.headers.get("content-encoding", "identity").strip().lower()
                    if encoding != "identity":
                        raise ClientKeyError("jwks_uri answered with a content-encoding")
                    body = bytearray()
                    async for chunk in r.aiter_raw():
                        body += chunk
                        if len(body) > limit:
                            raise ClientKeyError(f"jwks_uri document over {limit} bytes")
        except TimeoutError:
            raise ClientKeyError("jwks_uri fetch took too long") from None
        except httpx.HTTPError as exc:
            raise ClientKeyError(f"jwks_uri fetch failed: {type(exc).__name__}") from None
        try:
            return JWKSet.from_dict(json.loads(bytes(body)))
        except (ValueError, JoseError) as exc:
            raise ClientKeyError(f"jwks_uri document unusable: {exc}") from None

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
