"""`X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`, trusted only from configured
proxies.

A client can write anything in these fields, so the gateway keeps what arrives only when the TCP
peer is one of `trusted_proxies` (addresses or CIDR blocks); otherwise it starts the chain afresh
from the peer address, its own scheme and the request's `Host`. The client address used in logs
is the right-most address in the chain that is not a trusted proxy (the only one nobody could
forge; the rule lives in `authgate.http_forwarding`, shared with the authorization server).
"""

from __future__ import annotations

from dataclasses import dataclass

from authgate.http_forwarding import TrustedProxies, client_address

__all__ = ["ForwardedFor", "TrustedProxies", "forwarded_for"]

_PROTOS = frozenset({b"http", b"https"})


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
    client = client_address(peer, xff.decode("latin-1"), trusted)
    return ForwardedFor(
        xff,
        proto if proto in _PROTOS else scheme,
        incoming_host.strip() if incoming_host else host,
        client,
    )
