"""The client address behind trusted reverse proxies: the `X-Forwarded-For` rule (the de-facto
form of RFC 7239 §5.2 `for=`).

A client can write anything in `X-Forwarded-For`, so the chain is believed only when the TCP peer
is one of the configured proxies (addresses or CIDR blocks). The client is then the right-most
address in the chain that is not a trusted proxy: every proxy appends the peer it saw, so that
entry was written by a proxy we trust and is the only one nobody could forge. Used by the
authorization server (throttling per address) and by the gateway (logs, upstream headers); it
knows nothing of either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies", "client_address", "parse_networks"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_OWS = " \t\r\n\x0b\x0c"  # what `bytes.strip()` removes: the same answer for str and bytes


def parse_networks(networks: Iterable[str]) -> tuple[_Network, ...]:
    """Addresses or CIDR blocks (host bits allowed) as networks; `ValueError` names a bad one.
    The one check of every `trusted_proxies` setting (server and gateway)."""
    parsed = []
    for item in networks:
        try:
            # A str only: ip_network would also take an int or bytes as an address.
            parsed.append(ipaddress.ip_network(item if isinstance(item, str) else "", strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
    return tuple(parsed)


class TrustedProxies:
    """A set of networks whose `X-Forwarded-*` headers are believed."""

    __slots__ = ("_cache", "_networks")

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = parse_networks(networks)
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


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client address of a request that `peer` sent with this `X-Forwarded-For` value (all
    its lines joined with `, `): the peer itself unless it is a trusted proxy, else the right-most
    untrusted entry of the chain (the left-most one when every entry is trusted)."""
    if not forwarded_for or not trusted or not trusted.trusts(peer):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        client = entry.strip(_OWS)
        if not trusted.trusts(client):
            break
    return client
