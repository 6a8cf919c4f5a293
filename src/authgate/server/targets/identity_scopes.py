"""The identity scopes of OpenID Connect and how a requested scope list splits into identity and API
scopes (OpenID Connect Core §5.4 standard scopes, §11 `offline_access`; RFC 6749 §3.3).

Identity scopes are the server's own: they decide the ID token, the userinfo claims and whether a
refresh token is issued. Every other scope belongs to an API and is resolved by the core's
scope/resource resolution (RFC 8707), exactly as for the client-credentials grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CLAIMS_BY_SCOPE",
    "IDENTITY_SCOPES",
    "OFFLINE_ACCESS",
    "OPENID",
    "ScopeDescription",
    "describe_scopes",
    "split_scopes",
]

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
IDENTITY_SCOPES = frozenset({OPENID, "profile", "email", OFFLINE_ACCESS})
# OpenID Connect Core §5.4, limited to the claims this server keeps about a user.
CLAIMS_BY_SCOPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "profile": ("name", "preferred_username"),
        "email": ("email", "email_verified"),
    }
)
_IDENTITY_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        OPENID: "Confirm your identity (your user identifier)",
        "profile": "See your name and username",
        "email": "See your email address",
        OFFLINE_ACCESS: "Keep this access while you are not signed in",
    }
)


@dataclass(frozen=True, slots=True)
class ScopeDescription:
    """One line of the consent page: the scope's name and what it allows, in words."""

    name: str
    description: str


def split_scopes(scopes: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(identity_scopes, api_scopes)`, each in the order given."""
    scopes = tuple(scopes)
    identity = tuple(scope for scope in scopes if scope in IDENTITY_SCOPES)
    api = tuple(scope for scope in scopes if scope not in IDENTITY_SCOPES)
    return identity, api


def describe_scopes(
    scopes: Iterable[str], api_descriptions: Mapping[str, str] | None = None
) -> list[ScopeDescription]:
    """Descriptions for the consent page: built in for identity scopes, the API's own otherwise.

    An API scope without a description is shown by its name, never hidden.
    """
    api_descriptions = api_descriptions or {}
    described = []
    for scope in scopes:
        text = _IDENTITY_DESCRIPTIONS.get(scope) or api_descriptions.get(scope) or scope
        described.append(ScopeDescription(scope, text))
    return described
