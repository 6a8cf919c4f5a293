"""Device authorization grant (RFC 8628 §3.1-§3.5, §5.1-§5.4, §6.1): device and user codes, the
user's decision and the polling state machine.

The user code is 8 letters from `BCDFGHJKLMNPQRSTVWXZ` (no vowels, so no words; no look-alikes such
as 0/O or 1/I), shown as `XXXX-XXXX`; what the user types is accepted with any case, dashes and
spaces (RFC 8628 §6.1). 20^8 codes give about 34.5 bits, enough with throttled guessing (`throttle`
module, `USER_CODE_POLICY`) and a 10-minute lifetime. The device code is 256 random bits. Both are
stored under the server's keyed hash only.

Polling (§3.5): `authorization_pending` until the user decides; polling faster than the interval
answers `slow_down` and adds 5 seconds to the interval for good; then `access_denied`, the tokens
(once), or `expired_token`. Every change of a record increments `version`, which the store uses
for compare-and-set (`DeviceAuthorizationStore.replace_device_authorization`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from authgate.oauth.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredDeviceCode,
    InvalidGrant,
    OAuthError,
    SlowDown,
)
from authgate.server.flows.redirect_uris import add_query
from authgate.server.models import DeviceAuthorization
from authgate.server.secret_key import generate_token

if TYPE_CHECKING:
    from authgate.server.storage.protocols import DeviceAuthorizationStore

__all__ = [
    "SLOW_DOWN_STEP",
    "USER_CODE_ALPHABET",
    "USER_CODE_LENGTH",
    "DevicePolicy",
    "TokensDue",
    "approve",
    "authorization_response",
    "decide_device_code",
    "deny",
    "format_user_code",
    "new_user_code",
    "normalize_user_code",
    "poll",
    "poll_device_code",
    "start",
]

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5
_MAX_TYPED = 32  # longer input is not a user code with some spaces
_DECIDE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """Lifetime of a device authorization and the initial polling interval, in seconds."""

    lifetime: int = 600
    interval: int = 5

    def __post_init__(self) -> None:
        if not 60 <= self.lifetime <= 3600 or not 1 <= self.interval <= 60:
            raise ValueError("device flow: lifetime must be 60-3600 s and interval 1-60 s")


@dataclass(frozen=True, slots=True)
class TokensDue:
    """The user approved: the tokens for `record` (already marked used) are due now."""

    record: DeviceAuthorization


def new_user_code() -> str:
    """A fresh user code in canonical form (8 letters, no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    """`BCDFGHJK` → `BCDF-GHJK`, the form shown to users."""
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(typed: str) -> str | None:
    """The canonical code for what a user typed (case, dashes and spaces ignored), or None when it
    cannot be a user code. Only ASCII is accepted (`"ß".upper()` would become two letters)."""
    if len(typed) > _MAX_TYPED or not typed.isascii():
        return None
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def start(
    *,
    hash_token: Callable[[str], str],
    client_id: str,
    scopes: Iterable[str],
    audiences: Iterable[str],
    now: int,
    policy: DevicePolicy,
) -> tuple[str, str, DeviceAuthorization]:
    """A new device authorization: `(device_code, user_code, record)`.

    If the store reports the user code taken (`AlreadyExistsError`), call again for a new one.
    """
    device_code, user_code = generate_token(), new_user_code()
    record = DeviceAuthorization(
        device_code_hash=hash_token(device_code),
        user_code_hash=hash_token(user_code),
        grant_id=secrets.token_urlsafe(16),
        client_id=client_id,
        scopes=tuple(scopes),
        audiences=tuple(audiences),
        created_at=now,
        expires_at=now + policy.lifetime,
        interval=policy.interval,
    )
    return device_code, user_code, record


def authorization_response(
    device_code: str, user_code: str, record: DeviceAuthorization, verification_uri: str, now: int
) -> dict[str, Any]:
    """The device authorization response body (RFC 8628 §3.2)."""
    shown = format_user_code(user_code)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": add_query(verification_uri, {"user_code": shown}),
        "expires_in": max(record.expires_at - now, 0),
        "interval": record.interval,
    }


def poll(
    record: DeviceAuthorization, *, client_id: str, now: int
) -> tuple[TokensDue | OAuthError, DeviceAuthorization]:
    """One token request for the device code (RFC 8628 §3.4-§3.5) by the authenticated
    `client_id`. Returns `TokensDue` or the error to answer, and the record to store
    (compare-and-set against `record`; a lost race means another poll came at the same moment:
    answer `slow_down`).
    """
    if record.client_id != client_id:
        return InvalidGrant("the device code was issued to another client"), record
    if record.status == "used":
        return InvalidGrant("the device code was already used"), record
    if now >= record.expires_at:
        return ExpiredDeviceCode("the device code has expired"), record
    if record.status == "denied":
        return AccessDenied("the user denied the request"), record
    if record.status == "approved":
        used = replace(record, status="used", last_polled_at=now, version=record.version + 1)
        return TokensDue(used), used
    too_fast = record.last_polled_at is not None and now - record.last_polled_at < record.interval
    polled = replace(
        record,
        last_polled_at=now,
        interval=record.interval + SLOW_DOWN_STEP if too_fast else record.interval,
        version=record.version + 1,
    )
    if too_fast:
        return SlowDown(f"poll at most every {polled.interval} seconds"), polled
    return AuthorizationPending("the user has not decided yet"), polled


def approve(
    record: DeviceAuthorization, *, user_id: str, auth_time: int, amr: Iterable[str], now: int
) -> DeviceAuthorization:
    """The record after the signed-in user approved it on the verification page (RFC 8628 §3.3).

    Raises `ExpiredDeviceCode` after expiry and `InvalidGrant` when it was already decided.
    """
    _check_pending(record, now)
    return replace(
        record,
        status="approved",
        user_id=user_id,
        auth_time=auth_time,
        amr=tuple(amr),
        version=record.version + 1,
    )


def deny(record: DeviceAuthorization, *, now: int) -> DeviceAuthorization:
    """The record after the user denied it; the device then gets `access_denied`."""
    _check_pending(record, now)
    return replace(record, status="denied", version=record.version + 1)


def _check_pending(record: DeviceAuthorization, now: int) -> None:
    if now >= record.expires_at:
        raise ExpiredDeviceCode("the code has expired")
    if record.status != "pending":
        raise InvalidGrant("the code was already used")


async def poll_device_code(
    store: DeviceAuthorizationStore, device_code_hash: str, *, client_id: str, now: int
) -> DeviceAuthorization:
    """The token endpoint's `urn:ietf:params:oauth:grant-type:device_code` step: the approved
    record (now marked used; issue its tokens) or the `OAuthError` to answer. Of concurrent polls
    exactly one can collect the tokens; a poll that loses the race answers `slow_down`."""
    record = await store.get_device_authorization(device_code_hash)
    if record is None:
        raise InvalidGrant("unknown device code")
    outcome, updated = poll(record, client_id=client_id, now=now)
    if updated is not record and not await store.replace_device_authorization(record, updated):
        raise SlowDown(f"poll at most every {record.interval} seconds")
    if isinstance(outcome, TokensDue):
        return outcome.record
    raise outcome


async def decide_device_code(
    store: DeviceAuthorizationStore,
    user_code_hash: str,
    *,
    approved: bool,
    user_id: str,
    auth_time: int,
    amr: Iterable[str],
    now: int,
) -> DeviceAuthorization:
    """Record the signed-in user's answer on the verification page; return the stored record.

    Retries when a poll changed the record meanwhile. Raises `InvalidGrant` for an unknown or
    already decided code and `ExpiredDeviceCode` after expiry.
    """
    amr = tuple(amr)
    for _ in range(_DECIDE_ATTEMPTS):
        record = await store.find_device_authorization(user_code_hash)
        if record is None:
            raise InvalidGrant("unknown code")
        if approved:
            updated = approve(record, user_id=user_id, auth_time=auth_time, amr=amr, now=now)
        else:
            updated = deny(record, now=now)
        if await store.replace_device_authorization(record, updated):
            return updated
    raise InvalidGrant("the code is being used by another request; try again")
