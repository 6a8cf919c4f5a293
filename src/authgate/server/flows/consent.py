"""Remembered consent: what a user has allowed a client, and whether a new request is covered
(RFC 6749 §4.1.1 and §10.2 on user approval; OpenID Connect Core §3.1.2.4 and §11).

A grant is remembered per (user, client): the scopes and the API identifiers (audiences) the user
approved. A request is covered when it asks for nothing beyond them. Approving more adds to the
grant, so approving a narrower request later never silently drops what was allowed before;
revoking (`authgate consent revoke`) deletes the grant, and the next request asks again.
"""

from __future__ import annotations

from collections.abc import Iterable

from authgate.server.models import ConsentGrant

__all__ = ["consent_covers", "record_consent"]


def consent_covers(
    grant: ConsentGrant | None, scopes: Iterable[str], audiences: Iterable[str]
) -> bool:
    """True when `grant` already allows every scope and every audience of the request."""
    if grant is None:
        return False
    return grant.scopes.issuperset(scopes) and grant.audiences.issuperset(audiences)


def record_consent(
    previous: ConsentGrant | None,
    *,
    user_id: str,
    client_id: str,
    scopes: Iterable[str],
    audiences: Iterable[str],
    now: int,
) -> ConsentGrant:
    """The grant to store after the user approved `scopes` for `audiences`: the union with what was
    approved before for the same user and client."""
    scopes, audiences = frozenset(scopes), frozenset(audiences)
    if previous is not None:
        if (previous.user_id, previous.client_id) != (user_id, client_id):
            raise ValueError("previous consent belongs to another user or client")
        scopes |= previous.scopes
        audiences |= previous.audiences
    return ConsentGrant(user_id, client_id, scopes, audiences, now)
