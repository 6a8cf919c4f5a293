"""Plain counters of the server's security events, kept per process and read at scrape time.

`SecurityCounters` (one per `AuthServer`, `server.counters`) is counted where each event happens:
client authentication (`endpoints.client_requests`), refresh-token reuse and revocation
(`flows.refresh_tokens`), the sign-in page and the device page's user-code throttle. Issued
access tokens are noted by the issuer in the request's `IssuedTokens` (`note_issued`), and the
request middleware counts them when the token response succeeded, with its grant type.

Every key is a bounded value: a method from `CLIENT_AUTH_METHODS`, an OAuth error code, a grant
type, a token format and an algorithm of the server's, a flow from `THROTTLED_FLOWS`; never a
client id, a user name, an address or anything else a request names.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field

from authgate.server.http.forms import Form

__all__ = [
    "CLIENT_AUTH_METHODS",
    "FAMILY_REVOCATION_REASONS",
    "THROTTLED_FLOWS",
    "IssuedTokens",
    "SecurityCounters",
    "issued_tokens",
    "note_issued",
    "presented_method",
]

# `other`: no credentials at all, several methods at once, or an Authorization scheme not Basic.
CLIENT_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
    "other",
)
# `reuse`: a rotated refresh token presented again (RFC 9700 §4.14.2); `revocation`: RFC 7009.
FAMILY_REVOCATION_REASONS = ("reuse", "revocation")
THROTTLED_FLOWS = ("signin", "user_code")


@dataclass(slots=True)
class SecurityCounters:
    """The counts of one server process (see the module docstring)."""

    # (method, OAuth error code) of each refused client authentication.
    client_auth_failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Rotated refresh tokens presented again (or by another client): each revoked its family.
    refresh_reuse: int = 0
    # Refresh-token families revoked by the server, by reason.
    families_revoked: Counter[str] = field(default_factory=Counter)
    # Sign-ins refused for a wrong username or password.
    signin_failures: int = 0
    # Attempts refused because a throttle key waits (429), by flow.
    throttled: Counter[str] = field(default_factory=Counter)


def presented_method(authorization: str | None, form: Form) -> str:
    """The client-authentication method a request tried (`CLIENT_AUTH_METHODS`), from which
    credentials it carries, not from their values."""
    methods = []
    if authorization is not None:
        scheme = authorization.strip().partition(" ")[0].lower()
        methods.append("client_secret_basic" if scheme == "basic" else "other")
    if form.get("client_assertion") is not None or form.get("client_assertion_type") is not None:
        methods.append("private_key_jwt")
    if form.get("client_secret") is not None:
        methods.append("client_secret_post")
    if not methods and form.get("client_id") is not None:
        methods.append("none")
    return methods[0] if len(methods) == 1 else "other"


@dataclass(slots=True)
class IssuedTokens:
    """The access tokens issued while one request is answered: (format, algorithm) each, the
    algorithm `none` for an opaque token."""

    tokens: list[tuple[str, str]] = field(default_factory=list)


# Set by the request middleware for the token endpoint; unset elsewhere (nothing is noted).
issued_tokens: ContextVar[IssuedTokens | None] = ContextVar("issued_tokens", default=None)


def note_issued(token_format: str, alg: str) -> None:
    """Note one access token issued in the current request (the issuer calls this)."""
    noted = issued_tokens.get()
    if noted is not None:
        noted.tokens.append((token_format, alg if token_format == "jwt" else "none"))
