"""The verifier's only network I/O: bounded JSON requests to configured issuers (RFC 8414 §3,
RFC 7517 §5, RFC 7662 §2). Nothing here is chosen by a token: URLs come from configuration or from
a configured issuer's metadata (RFC 8725 §3.10).

Every request is limited in time (one deadline for connect, send and the whole body) and in size
(the body is read in chunks and abandoned past `max_bytes`), never follows redirects, ignores proxy
settings from the environment, and goes only to `https` URLs, or `http` to a loopback address (for
development and tests; RFC 8252 §8.3 makes the same exception). A failure raises `FetchError`, whose
message never contains credentials.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from authgate.jose.encoding import json_object
from authgate.jose.errors import MalformedToken

__all__ = ["FetchError", "FetchLimits", "HttpFetcher", "JsonResponse", "check_fetch_url"]

_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Limits on one request: `timeout` seconds in all, `max_bytes` of response body."""

    timeout: float = 5.0
    max_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not self.max_bytes > 0:
            raise ValueError("fetch limits must be positive")


class FetchError(Exception):
    """A request to an issuer failed: network, status, size, time or content."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A successful response: its status, lower-cased headers and JSON object body."""

    status: int
    headers: Mapping[str, str]
    body: dict[str, Any]


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str) -> str:
    """Return `url` if the verifier may fetch it; raise `ValueError` otherwise."""
    if not isinstance(url, str):
        raise TypeError("a URL must be a string")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"malformed URL {url!r}") from None
    if not host or parts.fragment or parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r} must be an absolute URL with a host, no userinfo, no fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback_host(host):
        return url
    raise ValueError(f"{url!r} must use https (plain http is allowed only to loopback)")


class HttpFetcher:
    """Bounded JSON GET/POST over one shared `httpx.AsyncClient` (a keep-alive pool).

    The client is created on first use, inside the running event loop, or passed in (tests,
    custom TLS settings). `aclose` closes a client it created.
    """

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._owns_client = client is None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,  # never route issuer traffic through an environment proxy
                follow_redirects=False,
                # identity: a compressed body could expand far past max_bytes in one chunk.
                headers={
                    "Accept": "application/json",
                    "Accept-Encoding": "identity",
                    "User-Agent": "authgate",
                },
            )
        return self._client

    async def get_json(self, url: str, limits: FetchLimits) -> JsonResponse:
        """GET `url` and parse a JSON object body."""
        return await self._request("GET", url, limits, data=None, headers=None)

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        limits: FetchLimits,
        headers: Mapping[str, str] | None = None,
    ) -> JsonResponse:
        """POST `form` as application/x-www-form-urlencoded and parse a JSON object body."""
        return await self._request("POST", url, limits, data=form, headers=headers)

    async def _request(
        self,
        method: str,
        url: str,
        limits: FetchLimits,
        *,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> JsonResponse:
        check_fetch_url(url)
        client = self._get_client()
        try:
            async with asyncio.timeout(limits.timeout):
                request = client.build_request(
                    method, url, data=data, headers=headers, timeout=limits.timeout
                )
                response = await client.send(request, stream=True)
                try:
                    body = await _read_bounded(response, limits.max_bytes)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise FetchError(
                f"{method} {url}: no complete answer within {limits.timeout}s"
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{method} {url}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise FetchError(
                f"{method} {url}: HTTP {response.status_code}", status=response.status_code
            )
        try:
            parsed = json_object(body, "response")
        except MalformedToken:
            raise FetchError(f"{method} {url}: the body is not a JSON object") from None
        headers_out = {k.lower(): v for k, v in response.headers.items()}
        return JsonResponse(response.status_code, headers_out, parsed)

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None


async def _read_bounded(response: httpx.Response, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise FetchError(f"unrequested content-encoding {encoding!r}")
    declared = response.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise FetchError(f"response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"response larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
