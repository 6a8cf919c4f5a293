"""The outcome of a successful verification: who is calling, for which client, with what rights
(RFC 9068 §2.2 and §2.2.3.1, RFC 7662 §2.2, RFC 8693 §4.2).

Issuers spell scopes and roles differently, so where they are read is configurable per issuer
(`ClaimMapping`). The defaults cover the common issuers:

- scopes: `scope` (a space-separated string: RFC 8693 §4.2, RFC 9068, Auth0, Keycloak, authgate)
  and `scp` (Entra ID: a space-separated string; Okta: an array of strings). Strings are split as
  RFC 6749 §3.3 says (`authgate.oauth.scope.split_scope`: on U+0020 only, items that are not scope
  tokens dropped); array elements are single scope tokens. `scope` is a string by definition
  (RFC 9068 §2.2.3, RFC 7662 §2.2), so an array there adds nothing; other sources (`scp`, a
  configured `permissions`) may be either;
- roles: `roles` (RFC 9068 §2.2.3.1 / RFC 7643, Entra ID app roles, authgate) and
  `realm_access.roles` (Keycloak realm roles). `groups` is not a default: a group is not a role,
  but it can be configured;
- client id: `client_id` (RFC 9068, RFC 7662), then `azp` (OpenID Connect, Keycloak, Auth0), `appid`
  (Entra ID v1), `cid` (Okta).

Every present source is read and the results are merged. A claim path is a tuple of member names
(`("realm_access", "roles")`); a name is never split on dots, because claim names may be URLs.
Values of the wrong type add nothing (they cannot widen rights).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from authgate.oauth.scope import is_scope_token, split_scope

__all__ = ["MISSING", "ClaimMapping", "ClaimPath", "Principal", "claim_at", "principal_from_claims"]

ClaimPath = tuple[str, ...]
AuthMethod = Literal["jwt", "introspection", "api_key"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # what `claim_at` returns for an absent claim


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where scopes, roles and the client id are read from (paths into the claims)."""

    scopes: tuple[ClaimPath, ...] = (("scope",), ("scp",))
    roles: tuple[ClaimPath, ...] = (("roles",), ("realm_access", "roles"))
    client_id: tuple[ClaimPath, ...] = (("client_id",), ("azp",), ("appid",), ("cid",))

    def __post_init__(self) -> None:
        for name in ("scopes", "roles", "client_id"):
            paths = getattr(self, name)
            if not all(
                isinstance(p, tuple) and p and all(isinstance(s, str) and s for s in p)
                for p in paths
            ):
                raise ValueError(f"claim paths for {name} must be non-empty tuples of names")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `subject` is the `sub` claim (the API key's configured subject); `client_id` the OAuth client;
    `scopes`/`roles` the merged rights; `issuer` the token's issuer (None for API keys); `claims`
    every verified claim (read-only); `method` how the caller was authenticated; `expires_at` the
    token's `exp` when known.
    """

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    issuer: str | None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    method: AuthMethod = "jwt"
    expires_at: float | None = None

    def has_scopes(self, scopes: Iterable[str], *, any_of: bool = False) -> bool:
        """Whether all (or, with `any_of`, at least one) of `scopes` were granted."""
        wanted = set(scopes)
        return bool(wanted & self.scopes) if any_of else wanted <= self.scopes

    def has_roles(self, roles: Iterable[str], *, any_of: bool = False) -> bool:
        """Whether all (or, with `any_of`, at least one) of `roles` are held."""
        wanted = set(roles)
        return bool(wanted & self.roles) if any_of else wanted <= self.roles


def claim_at(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    """The value at `path`, or `MISSING` (compare with `is MISSING`)."""
    value: Any = claims
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            return MISSING
        value = value[name]
    return value


# Claims whose value is a scope string and never an array (RFC 9068 §2.2.3, RFC 7662 §2.2).
_STRING_ONLY_SCOPES: frozenset[ClaimPath] = frozenset({("scope",)})


def _scopes(value: Any, *, arrays: bool) -> set[str]:
    if isinstance(value, str):
        return set(split_scope(value))
    if arrays and isinstance(value, list):
        return {v for v in value if isinstance(v, str) and is_scope_token(v)}
    return set()


def _roles(value: Any) -> set[str]:
    # A role is one string: "Order Admins" is one role, not two.
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str) and v}
    return set()


def principal_from_claims(
    claims: Mapping[str, Any],
    mapping: ClaimMapping,
    *,
    issuer: str | None,
    method: AuthMethod,
) -> Principal:
    """Build a `Principal` from verified claims (a JWT payload or an introspection answer)."""
    scopes: set[str] = set()
    for path in mapping.scopes:
        scopes |= _scopes(claim_at(claims, path), arrays=path not in _STRING_ONLY_SCOPES)
    roles: set[str] = set()
    for path in mapping.roles:
        roles |= _roles(claim_at(claims, path))
    client_id = None
    for path in mapping.client_id:
        value = claim_at(claims, path)
        if isinstance(value, str) and value:
            client_id = value
            break
    subject = claims.get("sub")
    exp: Any = claims.get("exp")
    return Principal(
        subject=subject if isinstance(subject, str) else None,
        client_id=client_id,
        scopes=frozenset(scopes),
        roles=frozenset(roles),
        issuer=issuer,
        claims=MappingProxyType(dict(claims)),
        method=method,
        expires_at=float(exp) if type(exp) in (int, float) else None,
    )
