"""Where the server's endpoints and pages are served: paths below the issuer URL (RFC 8414 §3 for
the metadata's own place)."""

from __future__ import annotations

__all__ = ["ENDPOINT_PATHS", "STATIC_PATH"]

ENDPOINT_PATHS = {
    "token": "/token",
    "introspection": "/introspect",
    "revocation": "/revoke",
    "jwks": "/.well-known/jwks.json",
    "authorization": "/authorize",
    "device_authorization": "/device_authorization",
    "pushed_authorization_request": "/par",  # RFC 9126 §2
    "userinfo": "/userinfo",
    "end_session": "/logout",
    # The pages of the flows (not metadata): sign-in, consent, the device verification page.
    "login": "/login",
    "consent": "/consent",
    "device": "/device",
}
# The pages' stylesheet and other static files.
STATIC_PATH = "/static"
