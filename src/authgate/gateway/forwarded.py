"""`X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`, trusted only from configured
proxies.

A client can write anything in these fields, so the gateway keeps what arrives only when the TCP
peer is one of `trusted_proxies` (addresses or CIDR blocks); otherwise it starts the chain afresh
from the peer address, its own scheme and the request's `Host`. The client address used in logs
is the right-most address in the chain that is not a trusted proxy (the only one nobody could
forge).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ForwardedFor", "TrustedProxies", "forwarded_for"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PROTOS = frozenset({b"http", b"https"})


class TrustedProxies:
    """A set of networks whose `X-Forwarded-*` headers are believed."""

    __slots__ = ("_cache", "_networks")

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """Whether `address` (a literal IP, possibly v4-mapped v6) lies in a trusted network."""
        known = self._cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        trusted = any(ip in net for net in self._networks)
        if len(self._cache) < 4096:  # bounded: peers are few, forged chain entries are not cached
            self._cache[address] = trusted
        return trusted


@dataclass(frozen=True, slots=True)
class ForwardedFor:
    """The values to send upstream and the client address to log."""

    xff: bytes
    proto: bytes
    host: bytes
    client: str


def forwarded_for(
    peer: str,
    *,
    scheme: bytes,
    host: bytes,
    incoming_xff: bytes | None,
    incoming_proto: bytes | None,
    incoming_host: bytes | None,
    trusted: TrustedProxies,
) -> ForwardedFor:
    """Compute the forwarding headers for a request that `peer` sent."""
    peer_bytes = peer.encode("ascii")
    if not trusted or not trusted.trusts(peer):
        return ForwardedFor(peer_bytes, scheme, host, peer)
    xff = incoming_xff + b", " + peer_bytes if incoming_xff else peer_bytes
    proto = incoming_proto.strip().lower() if incoming_proto else b""
    chain = [a.strip().decode("latin-1") for a in xff.split(b",")]
    client = peer
    for address in reversed(chain):
        client = address
        if not trusted.trusts(address):
            break
    return ForwardedFor(
        xff,
        proto if proto in _PROTOS else scheme,
        incoming_host.strip() if incoming_host else host,
        client,
    )
