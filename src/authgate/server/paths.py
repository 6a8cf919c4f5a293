"""Where the server's endpoints and pages are served: paths below the issuer URL, and the places of
the metadata document (RFC 8414 §3.1; OpenID Connect Discovery 1.0 §4).

An issuer with a path (`https://auth.example.com/tenant1`) serves every endpoint below that path
(`/tenant1/token`), exactly where its metadata says; the metadata itself answers at the three URLs
MCP clients try, in the order of the MCP authorization specification (2025-11-25): RFC 8414's
path insertion for both well-known names, then OpenID Connect's path appending. A path-less issuer
answers at the two plain well-known URLs. No other well-known URL answers: its derived issuer
would not be this one (RFC 8414 §3.3).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "ENDPOINT_PATHS",
    "OAUTH_METADATA",
    "OPENID_METADATA",
    "STATIC_PATH",
    "check_issuer_path",
    "issuer_path",
    "metadata_paths",
]

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
    # Dynamic client registration (RFC 7591 §3); each client's configuration endpoint (RFC 7592
    # §2) is below it, /register/CLIENT_ID. Served only with `[registration] mode` on.
    "registration": "/register",
    # The pages of the flows (not metadata): sign-in, consent, the device verification page.
    "login": "/login",
    "consent": "/consent",
    "device": "/device",
}
# The pages' stylesheet and other static files.
STATIC_PATH = "/static"
OAUTH_METADATA = "/.well-known/oauth-authorization-server"  # RFC 8414 §3
OPENID_METADATA = "/.well-known/openid-configuration"  # OpenID Connect Discovery 1.0 §4

# RFC 3986 §3.3 `pchar` without percent-encoding: the path is routed as written, so it must have
# one spelling (no escapes) and no route-template braces.
_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+")


def issuer_path(issuer: str) -> str:
    """The issuer's path: "" for `https://auth.example.com`, "/tenant1" for `.../tenant1`."""
    return urlsplit(issuer).path


def check_issuer_path(issuer: str) -> str | None:
    """Why the issuer's path cannot be served as written, or None: segments of RFC 3986 `pchar`
    without percent-escapes, none empty, "." or ".." (which clients would normalise away)."""
    path = issuer_path(issuer)
    if not path:
        return None
    for segment in path[1:].split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            return "the issuer's path must be segments of letters, digits and -._~!$&'()*+,;=:@"
    return None


def metadata_paths(issuer: str) -> tuple[str, ...]:
    """The paths where the metadata document answers, in the order MCP clients try them."""
    path = issuer_path(issuer)
    if not path:
        return (OAUTH_METADATA, OPENID_METADATA)
    return (OAUTH_METADATA + path, OPENID_METADATA + path, path + OPENID_METADATA)
