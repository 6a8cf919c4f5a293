"""Fetching a URL a stranger chose: a client's `jwks_uri`, a client ID metadata document. One home
for every rule that keeps such a fetch from being turned against the server or its network
(RFC 9700 §4.13 on URLs in client metadata; draft-ietf-oauth-client-id-metadata-document §8.6 SSRF).

- https only; `[fetch] allow_loopback` (development) also lets http and https reach loopback
  addresses, and nothing else private.
- The host name is resolved once, every address it resolves to is checked (`address_problem`:
  private, loopback, link-local, CGNAT, multicast, unspecified, reserved, cloud metadata), and the
  connection goes to the checked address: the check and the connection cannot see two different
  answers (DNS rebinding). TLS still verifies the certificate against the host name, and SNI
  carries it: the network backend pins the address, httpcore does TLS for the name.
- No redirects (a 3xx is an error), no proxy from the environment, no content-encoding, a size
  limit enforced while reading, a connect time limit and one time limit for the whole fetch (a
  server sending a byte a second ends at the deadline).
- A per-host budget through the server's limiter (`[fetch] host_rate`), so that nobody can make the
  server fetch from one host in a loop.

Errors are `FetchError`: `public` is safe to show to the client (what was wrong, never internal
detail such as the resolved address), `str()` is for logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from authgate.limits import Limit, Limiter, parse_rate
from authgate.server.config import FetchSettings, is_loopback_host

__all__ = [
    "FetchError",
    "Fetched",
    "OutboundFetcher",
    "Resolver",
    "address_problem",
    "url_problem",
]

_log = logging.getLogger("authgate.server.outbound")

# (host, port) -> the addresses the name resolves to. Tests inject one; the default asks the
# system resolver once per connection.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud instance metadata services: refused even where their range would be allowed.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::123",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_MAX_HOST_LENGTH = 253


class FetchError(Exception):
    """A fetch was refused or failed. `public`: what to tell the client; `str()`: for logs."""

    def __init__(self, public: str, detail: str | None = None) -> None:
        super().__init__(public if detail is None else f"{public} ({detail})")
        self.public = public


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 200 response: its lower-cased headers and its body."""

    headers: Mapping[str, str]
    body: bytes


def url_problem(url: str, *, allow_loopback: bool = False) -> str | None:
    """Why the server must not fetch `url`, or None. Syntax only; addresses are checked at
    connection time (`address_problem`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    host = parts.hostname
    if not host or not url.isascii() or any(c.isspace() or c in "\\<>\"'" for c in url):
        return "must be an absolute URL in ASCII"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not contain a user name or password"
    if parts.fragment or "#" in url:
        return "must not contain a fragment"
    if len(host) > _MAX_HOST_LENGTH or port == 0:
        return "has an invalid host or port"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_loopback and is_loopback_host(host):
        return None
    return "must use https"


def address_problem(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why the server must not connect to `address` (an IP address), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside IPv6 reaches the IPv4 host: judge that host.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            return address_problem(str(embedded), allow_loopback=allow_loopback)
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    # `is_global` is False for the private, shared (CGNAT, 100.64.0.0/10), reserved and
    # documentation ranges, IPv6 unique-local and site-local addresses among them.
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "a private or reserved address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host` (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host, then connects to the checked address. httpcore does TLS
    afterwards with the URL's host name (SNI and certificate verification)."""

    def __init__(self, resolve: Callable[[str, int], Awaitable[str]]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self._resolve(host, port)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _connect_problem(exc: httpcore.ConnectError) -> str:
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, ssl.SSLCertVerificationError):
        return "the TLS certificate is not valid for the host"
    if isinstance(cause, ssl.SSLError):
        return "the TLS connection failed"
    return "the host could not be reached"


class OutboundFetcher:
    """GETs documents from URLs that strangers chose (see the module docstring)."""

    def __init__(
        self,
        settings: FetchSettings,
        limiter: Limiter | None = None,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._limiter = limiter
        self._resolver = resolver or system_resolver
        # A budget: the whole count may be spent at once, then it refills at the rate.
        rate = parse_rate(settings.host_rate)
        self._host_limit = Limit("fetch-host", parse_rate(settings.host_rate, burst=rate.count))
        context = ssl_context or ssl.create_default_context()
        if ssl_context is None and settings.ca_file is not None:
            context.load_verify_locations(cafile=str(settings.ca_file))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=settings.max_connections,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(self._pinned_address),
        )

    async def get(self, url: str, *, max_bytes: int, time_limit: float) -> Fetched:
        """GET `url`: a 200 response within `max_bytes` and `time_limit` seconds, else
        `FetchError`."""
        timeout = time_limit
        allow_loopback = self._settings.allow_loopback
        problem = url_problem(url, allow_loopback=allow_loopback)
        if problem:
            raise FetchError(f"the URL {problem}")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        await self._spend_budget(host)
        timeouts = {
            "connect": min(self._settings.connect_timeout, timeout),
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        headers = [
            (b"Host", parts.netloc.encode("ascii")),
            (b"Accept", b"application/json"),
            # Compressed bodies are refused: one chunk could inflate far past the limit.
            (b"Accept-Encoding", b"identity"),
            (b"User-Agent", b"authgate"),
        ]
        try:
            # httpcore's timeouts bound each read; this bounds the whole fetch (a slow drip).
            async with asyncio.timeout(timeout):
                return await self._read(url, headers, timeouts, max_bytes)
        except TimeoutError:
            raise FetchError("the fetch took too long") from None
        except httpcore.ConnectError as exc:
            raise FetchError(_connect_problem(exc), f"connect: {exc!r}") from None
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise FetchError("the fetch failed", f"{type(exc).__name__}: {exc}") from None
        except ssl.SSLError as exc:
            raise FetchError("the TLS connection failed", f"tls: {exc!r}") from None

    async def _read(
        self,
        url: str,
        headers: list[tuple[bytes, bytes]],
        timeouts: dict[str, float],
        max_bytes: int,
    ) -> Fetched:
        async with self._pool.stream(
            "GET", url, headers=headers, extensions={"timeout": timeouts}
        ) as response:
            found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
            if 300 <= response.status < 400:
                raise FetchError(
                    f"the server answered a redirect ({response.status}), not followed"
                )
            if response.status != 200:
                raise FetchError(f"the server answered {response.status}, not 200")
            if found.get("content-encoding", "identity").strip().lower() != "identity":
                raise FetchError("the response has a content-encoding")
            declared = found.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"the document is larger than {max_bytes} bytes")
            body = bytearray()
            async for chunk in response.aiter_stream():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"the document is larger than {max_bytes} bytes")
        return Fetched(found, bytes(body))

    async def _spend_budget(self, host: str) -> None:
        if self._limiter is None:
            return
        decision = await self._limiter.hit(self._host_limit, "host", host)
        if not decision.allowed:
            raise FetchError("too many fetches from this host; try again later")

    async def _pinned_address(self, host: str, port: int) -> str:
        allow_loopback = self._settings.allow_loopback
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                addresses = await self._resolver(host, port)
            except OSError as exc:
                raise FetchError("the host name does not resolve", f"dns: {exc!r}") from None
        if not addresses:
            raise FetchError("the host name does not resolve")
        for address in addresses:
            problem = address_problem(address, allow_loopback=allow_loopback)
            if problem:
                # Every address must pass: a name that mixes public and private ones is refused.
                _log.warning("refused to fetch from %s: it resolves to %s", host, problem)
                raise FetchError(f"the host resolves to {problem}", f"{host} -> {address}")
        return addresses[0].split("%", 1)[0]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._pool.aclose()
