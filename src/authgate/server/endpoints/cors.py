"""Cross-origin access to the endpoints that applications in a browser call themselves: token,
revocation, userinfo, device authorization, metadata and the JWKS (Fetch standard, CORS protocol;
OAuth 2.0 for Browser-Based Apps §6.1 has single-page apps call the token endpoint directly).

These endpoints never read cookies: clients authenticate in the request (a form field, an
`Authorization` header), so `Access-Control-Allow-Origin: *` without credentials gives another
site nothing it could not do with any HTTP client. The sign-in pages, consent and logout are
left alone: no CORS headers, so no other origin can read them, and they rely on the session
cookie and CSRF tokens. Preflight requests are answered here, before routing.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiCors"]

_ALLOWED_HEADERS = "Authorization, Content-Type, DPoP"  # RFC 9449: browser clients send proofs
_EXPOSED = "WWW-Authenticate, Retry-After, RateLimit, RateLimit-Policy, DPoP-Nonce"
_PREFLIGHT = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", _ALLOWED_HEADERS.encode()),
    (b"access-control-max-age", b"600"),
    (b"content-length", b"0"),
]
_SIMPLE = [
    (b"access-control-allow-origin", b"*"),
    # The rate-limit fields, so that a browser app can pace itself; the DPoP nonce (RFC 9449 §8).
    (b"access-control-expose-headers", _EXPOSED.encode()),
]


class ApiCors:
    """ASGI middleware adding CORS to `paths` only."""

    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" not in headers:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 204, "headers": _PREFLIGHT})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SIMPLE]}
            await send(message)

        await self.app(scope, receive, with_cors)
