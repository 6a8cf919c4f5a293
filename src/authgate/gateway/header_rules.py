"""Which header fields cross the gateway (RFC 9110 §7.6.1, §7.6.3; RFC 9112 §9.6).

Hop-by-hop fields, and every field that a `Connection` header names, are removed in both
directions. Identity fields (`X-Auth-*`, in any case, with `_` or `-`) are removed from every
request before it is proxied, public routes included: only the gateway speaks for the client's
identity. Credentials (`Authorization`, API-key headers) are removed unless the route forwards
them.

Headers are lists of `(name, value)` byte pairs, names as received; comparisons use lower case.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "HOP_BY_HOP",
    "Headers",
    "connection_tokens",
    "is_identity_header",
    "request_headers_for_upstream",
    "response_framing",
    "response_headers_for_client",
]

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 names these; Proxy-Authorization/-Authenticate are addressed to this proxy, and
# Trailer announces trailers, which the gateway does not relay.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Set by the gateway from the connection itself (see forwarded.py); a client's copies are dropped.
FORWARDING = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip"}
)
# Dropped from every request whatever the route: the gateway sets `Host` itself.
_ALWAYS_DROPPED = HOP_BY_HOP | FORWARDING | {b"host"}
_IDENTITY_PREFIX = b"x-auth-"
# A `Connection` header may name extra hop-by-hop fields, but never the message's framing: if
# `Connection: Content-Length` removed the length, the body would reach the next hop as the start
# of another request (request smuggling past the gate) or of another response.
_NEVER_NAMED = frozenset({b"content-length"})


def is_identity_header(lower_name: bytes) -> bool:
    """True for `x-auth-…` in any mix of `-` and `_` (`X_AUTH_SUBJECT`, `x-auth_subject`…)."""
    return lower_name[:7].replace(b"_", b"-") == _IDENTITY_PREFIX


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The lower-cased field names listed in every `Connection` header (RFC 9110 §7.6.1)."""
    return _tokens([value for name, value in headers if name.lower() == b"connection"])


def _tokens(values: list[bytes]) -> frozenset[bytes]:
    """The lower-cased field names that these `Connection` values list (never `_NEVER_NAMED`)."""
    tokens: set[bytes] = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip()  # noqa: PLW2901 - the stripped token is the token
            if token:
                tokens.add(token.lower())
    return frozenset(tokens) - _NEVER_NAMED


def request_headers_for_upstream(
    headers: Headers,
    *,
    credentials: frozenset[bytes],
    named: frozenset[bytes] | None = None,
) -> Headers:
    """The client's request headers minus hop-by-hop, identity, forwarding and credential fields.

    `credentials`: lower-case names to drop (empty when the route forwards them). `Host` is dropped
    too: the caller sets it, so that no `Connection` trick can leave the request without one.
    `named`: the `Connection` tokens, when the caller already knows them.
    """
    if named is None:
        named = connection_tokens(headers)
    out: Headers = []
    for name, value in headers:
        lower = name.lower()
        if (
            lower in _ALWAYS_DROPPED
            or lower in credentials
            or lower in named
            or is_identity_header(lower)
        ):
            continue
        out.append((name, value))
    return out


def response_headers_for_client(headers: Headers) -> Headers:
    """The upstream's response headers minus hop-by-hop fields and those its `Connection` names."""
    return response_framing(headers)[0]


def response_framing(headers: Headers) -> tuple[Headers, bool, bool]:
    """`response_headers_for_client(headers)`, and whether the upstream sent `Content-Length` and
    `Transfer-Encoding` (its framing, RFC 9112 §6.3): one pass over the names (every response's)."""
    out: Headers = []
    connection: list[bytes] = []
    length = chunked = False
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            if lower == b"transfer-encoding":
                chunked = True
            elif lower == b"connection":
                connection.append(value)
            continue
        if lower == b"content-length":
            length = True
        out.append((name, value))
    if connection:
        # Never `Content-Length` (see `_NEVER_NAMED`); hop-by-hop names are gone already (the
        # usual `Connection: keep-alive` leaves nothing more to remove).
        named = _tokens(connection) - HOP_BY_HOP
        if named:
            out = [(n, v) for n, v in out if n.lower() not in named]
    return out, length, chunked
