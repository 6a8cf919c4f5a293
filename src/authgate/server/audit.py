"""The audit trail: security events, stored (`AuditStore`) and logged (logger `authgate.audit`).

Events: registry changes (`api.created`, `api.deleted`, `client.created`, `client.deleted`,
`client.secret_rotated`, `user.created`, `user.password_changed`, `user.profile_changed`,
`user.deleted`), dynamic client registration (`client.registered`,
`client.registration_updated`, `client.registration_deleted`: RFC 7591, RFC 7592; and the
initial access tokens' `registration_token.created`, `registration_token.revoked`), signing
keys (`key.created`, `key.removed`, and `key.rotated` when an admin brings a rotation forward),
`refresh_token.reused` (a family revoked, RFC 9700 §4.14.2), `consent.revoked`, and
`signin.throttled` (an account or a client address reached its limit of failed sign-ins).

Callers pass names and identifiers only, never a secret, token, code or password. Details are
bounded anyway: at most `MAX_DETAILS` keys, each value a bool, an int or a string cut to
`MAX_VALUE` printable characters, so an event stays small whatever a client sent. Writing is
best effort: the log line is written first, and a database that fails to store the event is
logged, not raised, so an audit write never turns a request or a command into an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authgate.server.models import AuditEvent

if TYPE_CHECKING:
    from authgate.server.storage.protocols import AuditStore

__all__ = ["KINDS", "MAX_DETAILS", "MAX_VALUE", "bounded", "record"]

_log = logging.getLogger("authgate.audit")

KINDS = frozenset(
    {
        "api.created",
        "api.deleted",
        "client.created",
        "client.deleted",
        "client.secret_rotated",
        "client.registered",
        "client.registration_updated",
        "client.registration_deleted",
        "registration_token.created",
        "registration_token.revoked",
        "user.created",
        "user.password_changed",
        "user.profile_changed",
        "user.deleted",
        "key.created",
        "key.removed",
        "key.rotated",
        "key.revoked",
        "token.revoked",
        "client.tokens_revoked",
        "user.sessions_revoked",
        "refresh_token.reused",
        "consent.revoked",
        "signin.throttled",
    }
)
MAX_DETAILS = 16
MAX_VALUE = 200
_MAX_SUBJECT = 2048
_MAX_ACTOR = 255


def bounded(text: str, limit: int = MAX_VALUE) -> str:
    """`text` cut to `limit` characters, controls and other unprintables replaced by `?`."""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def _details(details: Mapping[str, Any]) -> dict[str, bool | int | str]:
    out: dict[str, bool | int | str] = {}
    for key, value in list(details.items())[:MAX_DETAILS]:
        if isinstance(value, bool | int) and abs(int(value)) < 2**53:
            out[bounded(key, 64)] = value
        elif isinstance(value, list | tuple):
            out[bounded(key, 64)] = bounded(" ".join(str(v) for v in value))
        elif value is not None:
            out[bounded(key, 64)] = bounded(str(value))
    return out


async def record(
    store: AuditStore,
    kind: str,
    subject: str,
    *,
    now: int,
    actor: str = "admin",
    **details: Any,
) -> AuditEvent:
    """Log and store one event of `kind` (one of `KINDS`); return it as stored."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}")
    event = AuditEvent(
        at=now,
        kind=kind,
        actor=bounded(actor, _MAX_ACTOR),
        subject=bounded(subject, _MAX_SUBJECT),
        details=_details(details),
    )
    _log.info(
        "%s subject=%s actor=%s %s",
        kind,
        bounded(event.subject),
        event.actor,
        json.dumps(event.details, separators=(",", ":"), sort_keys=True),
    )
    try:
        await store.append_audit_event(event)
    except Exception as exc:  # noqa: BLE001 - best effort: the event is in the log already
        _log.error("storing audit event %s failed: %s", kind, type(exc).__name__)
    return event
