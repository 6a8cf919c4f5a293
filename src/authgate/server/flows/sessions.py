"""Browser sessions of the authorization server: the cookie, the server-side record, expiry, and
CSRF tokens for every form (RFC 6265bis §4.1.3.2 `__Host-` prefix and §5.6.7 `SameSite`; RFC 6749
§10.12 CSRF; RFC 9700 §4.7; OWASP Session Management and CSRF Prevention cheat sheets).

The cookie holds a random id (256 bits); the server stores the session under the keyed hash of
that id, so logout and expiry are real and a database leak yields no usable cookie. A successful
sign-in always starts a new id (no session fixation). The cookie is HttpOnly, `SameSite=Lax`,
`Path=/`, and on an https issuer also `Secure` with the `__Host-` prefix, which forbids a
`Domain` attribute so a sibling subdomain cannot plant it.

A visitor who is not signed in may carry an id with no stored record: CSRF tokens bind to the id,
so the login form is protected too. A token is HMAC-SHA256 of the id under a key used for nothing
else, checked in constant time; it changes whenever the id does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from authgate.server.models import Session
from authgate.server.secret_key import generate_token

__all__ = [
    "CSRF_FIELD",
    "CsrfTokens",
    "SessionCookie",
    "SessionPolicy",
    "is_active",
    "session_cookie",
    "start_session",
    "touch",
]

HOUR = 3600
CSRF_FIELD = "csrf_token"  # the hidden form field every template carries


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """A session ends `idle_timeout` seconds after its last use or `absolute_lifetime` after the
    sign-in, whichever comes first. `last_seen` is written at most every `touch_interval`."""

    idle_timeout: int = 8 * HOUR
    absolute_lifetime: int = 7 * 24 * HOUR
    touch_interval: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.idle_timeout <= self.absolute_lifetime:
            raise ValueError("sessions: need 0 < idle_timeout <= absolute_lifetime")
        if not 0 <= self.touch_interval < self.idle_timeout:
            raise ValueError("sessions: touch_interval must be shorter than idle_timeout")


def start_session(
    *, hash_token: Callable[[str], str], user_id: str, amr: Iterable[str], now: int
) -> tuple[str, Session]:
    """A new session after a successful sign-in: `(cookie value, record)`. Always a new id."""
    session_id = generate_token()
    record = Session(hash_token(session_id), user_id, now, tuple(amr), now, now)
    return session_id, record


def is_active(session: Session, now: int, policy: SessionPolicy) -> bool:
    """True until the idle timeout or the absolute lifetime is reached."""
    return (
        now < session.last_seen + policy.idle_timeout
        and now < session.created_at + policy.absolute_lifetime
    )


def touch(session: Session, now: int, policy: SessionPolicy) -> Session | None:
    """The session with `last_seen` moved to `now`, or None when it is too recent to rewrite."""
    if now - session.last_seen < policy.touch_interval:
        return None
    return replace(session, last_seen=now)


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """The session cookie's name and attributes (the same for setting and clearing)."""

    name: str
    secure: bool

    def set_header(self, value: str, max_age: int | None = None) -> str:
        """A `Set-Cookie` value carrying `value` (a session-lifetime cookie unless `max_age`)."""
        attributes = [f"{self.name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if self.secure:
            attributes.append("Secure")
        if max_age is not None:
            attributes.append(f"Max-Age={max_age}")
        return "; ".join(attributes)

    def clear_header(self) -> str:
        """A `Set-Cookie` value that removes the cookie (on logout)."""
        return self.set_header("", max_age=0)


def session_cookie(issuer: str) -> SessionCookie:
    """The cookie for this issuer: `__Host-authgate_session`, Secure, on https; otherwise (a
    loopback http issuer during development) `authgate_session` without Secure."""
    if issuer.startswith("https://"):
        return SessionCookie("__Host-authgate_session", secure=True)
    return SessionCookie("authgate_session", secure=False)


class CsrfTokens:
    """Synchronizer tokens bound to the session id (OWASP "HMAC-based token" pattern)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the CSRF key must have at least 256 bits")
        self._key = key

    def token(self, session_id: str) -> str:
        """The token that forms rendered for this session id must carry."""
        mac = hmac.new(self._key, b"authgate csrf\x00" + session_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")

    def verify(self, session_id: str | None, presented: str | None) -> bool:
        """True when `presented` is this session's token; constant time; False without either."""
        if not session_id or not presented or not presented.isascii():
            return False
        return hmac.compare_digest(self.token(session_id), presented)
