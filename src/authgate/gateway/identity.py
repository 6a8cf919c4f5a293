"""Identity sent to upstreams: `X-Auth-*` fields and the gateway-minted `X-Auth-Token`
(RFC 9068 §2 claim set, RFC 7519; RFC 9110 §5.5 field values).

A claim can hold any Unicode, and a field value cannot hold CR, LF or other controls: values are
sent as UTF-8 with every byte outside visible ASCII and space, and `%`, percent-encoded (plus `,` in
role names, since roles are comma-separated). Plain ASCII values, the usual case, pass unchanged.

`X-Auth-Token` is a JWT signed with the gateway's own key (never the issuer's): `iss` is the
gateway, `aud` the upstream, `exp` at most `ttl` seconds ahead and never after the client token's
`exp`. Upstreams verify it against the JWKS the gateway serves, instead of trusting headers. Minted
tokens are reused while more than half of their lifetime remains, so signing stays off the hot path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from authgate.gateway.config import IdentityTokenSettings
from authgate.gateway.header_rules import Headers
from authgate.jose import jwt
from authgate.verifier import Principal

__all__ = ["IDENTITY_FIELDS", "IdentityTokenMinter", "field_value", "identity_headers"]

IDENTITY_FIELDS = (
    b"X-Auth-Subject",
    b"X-Auth-Client-Id",
    b"X-Auth-Scopes",
    b"X-Auth-Roles",
    b"X-Auth-Issuer",
)

_SAFE = frozenset(range(0x20, 0x7F)) - {0x25}
_SAFE_IN_LIST = _SAFE - {0x2C}
_MAX_MINTED = 10_000


def field_value(text: str, *, in_list: bool = False) -> bytes:
    """`text` as a header-safe field value (see the module docstring)."""
    raw = text.encode("utf-8")
    safe = _SAFE_IN_LIST if in_list else _SAFE
    if safe.issuperset(raw):
        return raw
    return b"".join(bytes((b,)) if b in safe else b"%%%02X" % b for b in raw)


def identity_headers(principal: Principal) -> Headers:
    """`X-Auth-Subject`, `-Client-Id`, `-Scopes` (space-separated), `-Roles` (comma-separated) and
    `-Issuer`, for the parts the principal has."""
    out: Headers = []
    if principal.subject is not None:
        out.append((b"X-Auth-Subject", field_value(principal.subject)))
    if principal.client_id is not None:
        out.append((b"X-Auth-Client-Id", field_value(principal.client_id)))
    if principal.scopes:
        out.append((b"X-Auth-Scopes", b" ".join(field_value(s) for s in sorted(principal.scopes))))
    if principal.roles:
        roles = (field_value(r, in_list=True) for r in sorted(principal.roles))
        out.append((b"X-Auth-Roles", b",".join(roles)))
    if principal.issuer is not None:
        out.append((b"X-Auth-Issuer", field_value(principal.issuer)))
    return out


class IdentityTokenMinter:
    """Signs and reuses `X-Auth-Token` JWTs."""

    def __init__(
        self, settings: IdentityTokenSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.header_name = settings.header.encode("ascii")
        self._clock = clock
        self._minted: dict[tuple[object, ...], tuple[bytes, float]] = {}

    def jwks(self) -> dict[str, object]:
        """The public key set to serve at `jwks_path`."""
        return {"keys": [self.settings.key.public().to_dict()]}

    def token_for(self, principal: Principal, audience: str) -> bytes:
        """A JWT for `principal` addressed to `audience`, minted now or reused."""
        now = self._clock()
        key = (
            audience,
            principal.issuer,
            principal.subject,
            principal.client_id,
            principal.scopes,
            principal.roles,
            principal.expires_at,
        )
        found = self._minted.get(key)
        if found is not None and now < found[1]:
            return found[0]
        ttl = self.settings.ttl
        exp = now + ttl
        if principal.expires_at is not None:
            exp = min(exp, principal.expires_at)
        claims: dict[str, object] = {
            "iss": self.settings.issuer,
            "aud": audience,
            "iat": int(now),
            "exp": int(exp),
            "jti": secrets.token_urlsafe(16),
        }
        if principal.subject is not None:
            claims["sub"] = principal.subject
        if principal.client_id is not None:
            claims["client_id"] = principal.client_id
        if principal.scopes:
            claims["scope"] = " ".join(sorted(principal.scopes))
        if principal.roles:
            claims["roles"] = sorted(principal.roles)
        if principal.issuer is not None:
            claims["origin_iss"] = principal.issuer
        token = jwt.encode(claims, self.settings.key, self.settings.alg, {"typ": "at+jwt"})
        if len(self._minted) >= _MAX_MINTED:
            del self._minted[next(iter(self._minted))]
        self._minted[key] = (token.encode("ascii"), now + (exp - now) / 2)
        return token.encode("ascii")
