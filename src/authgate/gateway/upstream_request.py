"""The request head sent to the upstream (RFC 9112 §3, §6.1; RFC 9110 §7.2, §7.6).

Built from the client's head after `header_rules` filtered it: the canonical target (with the
route's prefix rewriting), `Host`, the forwarding fields, the identity fields, `Via`, and framing:
`Content-Length` is passed on, a chunked body is re-chunked by the gateway, and a WebSocket upgrade
gets its `Connection: Upgrade` back.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from authgate.gateway.config import RouteUpstream
from authgate.gateway.forwarded import ForwardedFor, TrustedProxies, forwarded_for
from authgate.gateway.header_rules import Headers, connection_tokens, request_headers_for_upstream
from authgate.gateway.request_head import RequestHead
from authgate.gateway.trace_context import TRACE_FIELDS
from authgate.policy.paths import strip_leading_segments

__all__ = ["build_request_head", "forwarding_for", "upstream_path"]

_AUTHORIZATION = frozenset({b"authorization", b"dpop"})  # the credential and its DPoP proof


def upstream_path(head: RequestHead, route: RouteUpstream) -> bytes:
    """The target sent upstream: strip the route's prefix, prepend the upstream's."""
    path = head.target.path
    strip = route.strip_segments
    if strip is not None:
        # Compared as the route matched: `/api;v=1/x` (and `/API/x` when case is ignored) is
        # under `/api` for the policy, so it loses `/api` too instead of going up unstripped.
        rest = strip_leading_segments(path, strip, case_insensitive=route.case_insensitive)
        if rest is not None:
            path = rest
    if route.prefix:
        path = route.prefix + path
    target = path.encode("ascii")
    query = head.target.query
    if query and not route.forward_authorization and (b"access_token" in query or b"%" in query):
        query = without_access_token(query)
    return target + b"?" + query if query else target


def without_access_token(query: bytes) -> bytes:
    """`query` without its RFC 6750 §2.3 `access_token` parameters (in any percent-encoding).

    A token sent in the query stays at the gateway like one in `Authorization`, unless the route
    forwards credentials: the upstream gets `X-Auth-*` and `X-Auth-Token` instead.
    """
    kept = [
        pair
        for pair in query.split(b"&")
        if unquote_plus(pair.partition(b"=")[0].decode("latin-1")) != "access_token"
    ]
    return b"&".join(kept)


def forwarding_for(head: RequestHead, trusted: TrustedProxies, scheme: bytes) -> ForwardedFor:
    """The forwarding values for this request (see `forwarded`)."""
    fields = head.fields
    xff = fields.get(b"x-forwarded-for")
    if xff is not None and b"x-forwarded-for" in head.repeated:
        xff = b", ".join(head.all_values(b"x-forwarded-for"))
    return forwarded_for(
        head.peer,
        scheme=scheme,
        host=head.target.authority or fields.get(b"host", b""),
        incoming_xff=xff,
        incoming_proto=fields.get(b"x-forwarded-proto"),
        incoming_host=fields.get(b"x-forwarded-host"),
        trusted=trusted,
    )


def build_request_head(
    head: RequestHead,
    route: RouteUpstream,
    forwarded: ForwardedFor,
    identity: Headers,
    *,
    credentials: frozenset[bytes],
    trace: Headers | None = None,
    authorization: bytes | None = None,
) -> bytes:
    """The complete request head (with its blank line) for the upstream.

    `identity`: the `X-Auth-*` fields to add. `credentials`: lower-case names of credential fields
    (API-key header); they and `Authorization` are removed unless the route forwards them.
    `trace`: the gateway span's `traceparent`/`tracestate`, sent instead of the client's (None:
    the client's pass through unchanged). `authorization`: a token sent as `Authorization: Bearer`
    in place of the client's (token exchange).
    """
    dropped = frozenset() if route.forward_authorization else _AUTHORIZATION | credentials
    if trace is not None:
        dropped |= TRACE_FIELDS
    named = connection_tokens(head.headers) if b"connection" in head.fields else frozenset()
    kept = request_headers_for_upstream(head.headers, credentials=dropped, named=named)
    host = (head.target.authority or head.fields.get(b"host", b"")) if route.preserve_host else b""
    lines = [
        head.method + b" " + upstream_path(head, route) + b" HTTP/1.1",
        b"Host: " + (host or route.origin.authority),
    ]
    for name, value in kept:
        lines.append(name + b": " + value)
    lines.append(b"X-Forwarded-For: " + forwarded.xff)
    lines.append(b"X-Forwarded-Proto: " + forwarded.proto)
    if forwarded.host:
        lines.append(b"X-Forwarded-Host: " + forwarded.host)
    for name, value in identity:
        lines.append(name + b": " + value)
    if authorization is not None:
        lines.append(b"Authorization: Bearer " + authorization)
    if trace is not None:
        for name, value in trace:
            lines.append(name + b": " + value)
    lines.append(b"Via: " + head.version + b" authgate")
    if head.upgrade:
        lines.append(b"Connection: Upgrade")
        lines.append(b"Upgrade: " + head.upgrade)
    elif head.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"
