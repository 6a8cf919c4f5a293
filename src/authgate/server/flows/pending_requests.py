"""Pending requests: a request that waits for the user (sign-in, consent, a device code, a logout
confirmation) carried through the page's form as a sealed ticket (RFC 6749 §10.12 and RFC 9700
§4.7 on integrity of the interaction; OpenID Connect Core §3.1.2.1 `prompt`/`max_age`).

The ticket holds the request's parameters exactly as the client sent them and the time the server
first saw them (`requested_at`, the anchor of `prompt=login` and `prompt=consent`), authenticated
with HMAC-SHA256 under a key used for nothing else. The endpoint validates the parameters again
when the form comes back, so a ticket grants nothing by itself; the MAC only keeps
`requested_at` honest (else a stale sign-in could satisfy `prompt=login` or `max_age`) and lets
the server stay stateless across processes. Tickets expire after `lifetime` seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from authgate.oauth.errors import InvalidRequest

__all__ = ["MAX_TICKET_LENGTH", "PendingRequest", "PendingRequests"]

MAX_TICKET_LENGTH = 40 * 1024
_CLOCK_SKEW = 60


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """An opened ticket: what kind of request, its parameters (in order), when it was made."""

    kind: str
    params: tuple[tuple[str, str], ...]
    requested_at: int


class PendingRequests:
    """Seals and opens tickets."""

    __slots__ = ("_key", "_lifetime")

    def __init__(self, key: bytes, *, lifetime: int = 1800) -> None:
        if len(key) < 32:
            raise ValueError("the ticket key must have at least 256 bits")
        self._key = key
        self._lifetime = lifetime

    def seal(self, kind: str, params: Sequence[tuple[str, str]], requested_at: int) -> str:
        """The ticket for a request of `kind` with `params`, first seen at `requested_at`."""
        payload = json.dumps(
            {"k": kind, "p": [list(pair) for pair in params], "t": requested_at},
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        return _b64(payload) + "." + _b64(self._mac(payload))

    def open(self, ticket: str | None, kinds: Collection[str], now: int) -> PendingRequest:
        """The request sealed in `ticket`; `InvalidRequest` when it is missing, altered, not of
        one of `kinds` or expired (the page then tells the user to start again)."""
        if not ticket or len(ticket) > MAX_TICKET_LENGTH or not ticket.isascii():
            raise InvalidRequest("the sign-in request is missing; start again from the app")
        encoded, _, mac = ticket.partition(".")
        try:
            payload = _unb64(encoded)
            valid = hmac.compare_digest(self._mac(payload), _unb64(mac))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise InvalidRequest("the sign-in request is not valid; start again from the app")
        data = json.loads(payload)  # authenticated: written by `seal`
        requested_at = int(data["t"])
        if data["k"] not in kinds:
            raise InvalidRequest("the sign-in request is not valid here; start again from the app")
        if not requested_at - _CLOCK_SKEW <= now < requested_at + self._lifetime:
            raise InvalidRequest("the sign-in request has expired; start again from the app")
        params = tuple((str(name), str(value)) for name, value in data["p"])
        return PendingRequest(str(data["k"]), params, requested_at)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, b"authgate ticket\x00" + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
