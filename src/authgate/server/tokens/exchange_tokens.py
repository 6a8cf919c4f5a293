"""Reading the subject and actor tokens of a token exchange (RFC 8693 §2.1, §3) into what the grant
decides with: who the token names, its scopes, its `act` and `may_act` - always from the verified
token, never from request parameters.

Accepted (anything else is `invalid_request`, as §2.2.2 says of unacceptable tokens):
- this server's access tokens (type `access_token`, or `jwt` for the JWT format), active, and
  either issued to the requesting client or addressed to an API whose tokens the client may
  introspect (it is that API's resource server): a token stolen from elsewhere cannot be
  exchanged by an unrelated client;
- this server's ID tokens (type `id_token`) issued to the requesting client (`aud`), unexpired;
  they carry no scope, so an exchange of one grants none;
- when the client is allowed (`exchange_external`), JWTs of the one `[token_exchange] issuer`,
  verified by the verifier core (`authgate.verifier`: signature by the issuer's JWKS, `iss`, `aud`,
  `exp`, RFC 8725 rules) whatever their declared type among the three.
Refresh tokens and other types are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authgate.jose import JoseError, jwt
from authgate.oauth.errors import InvalidRequest
from authgate.server.keys import KeyManager
from authgate.server.models import Client
from authgate.server.tokens.inspection import TokenInspector
from authgate.verifier import TokenRejected, Verifier

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "JWT_TYPE",
    "ExchangeTokenReader",
    "PresentedToken",
]

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
_TYPES = (ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TYPE)
_MAX_TOKEN = 16 * 1024


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A verified subject or actor token. `issuer` is None for this server's own tokens."""

    subject: str
    scopes: frozenset[str]
    expires_at: int
    roles: tuple[str, ...] = ()
    act: Mapping[str, Any] | None = None
    may_act: Mapping[str, Any] | None = None
    issuer: str | None = None


class ExchangeTokenReader:
    """Verifies the tokens presented to the token exchange grant."""

    def __init__(
        self,
        *,
        inspector: TokenInspector,
        keys: KeyManager,
        algorithms: Sequence[str],
        issuer: str,
        clock: Callable[[], float],
        external: Verifier | None = None,
    ) -> None:
        self._inspector = inspector
        self._keys = keys
        self._algorithms = list(algorithms)
        self._issuer = issuer
        self._clock = clock
        self._external = external

    async def read(
        self, token: str, token_type: str | None, role: str, client: Client
    ) -> PresentedToken:
        """The verified `role` token ("subject_token" or "actor_token") of `client`'s request."""
        if token_type is None:
            raise InvalidRequest(f"{role}_type is required")
        if token_type not in _TYPES:
            raise InvalidRequest(
                f"{role}_type must be an access token, ID token or JWT of this server"
                + (" or the trusted issuer" if self._external is not None else "")
            )
        if len(token) > _MAX_TOKEN:
            raise InvalidRequest(f"{role} is too large")
        issuer = _claimed_issuer(token)
        if issuer is not None and issuer != self._issuer:
            return await self._read_external(token, role, client)
        if token_type == ID_TOKEN_TYPE:
            return self._read_id_token(token, role, client)
        return await self._read_access_token(token, token_type, role, client)

    async def _read_access_token(
        self, token: str, token_type: str, role: str, client: Client
    ) -> PresentedToken:
        info = await self._inspector.find(token)
        if info is None or info.kind != "access_token" or not info.active:
            raise InvalidRequest(f"{role} is not an active access token of this server")
        if token_type == JWT_TYPE and info.format != "jwt":
            raise InvalidRequest(f"{role} is not a JWT")
        access = client.access_to(info.audience)
        if info.client_id != client.client_id and not (access and access.may_introspect):
            # Only the client it was issued to, or a resource server of its API, may exchange it.
            raise InvalidRequest(f"{role} was issued to another client for another API")
        return PresentedToken(
            subject=info.subject,
            scopes=frozenset(info.scope.split()),
            expires_at=info.expires_at,
            roles=info.roles,
            act=info.act,
        )

    def _read_id_token(self, token: str, role: str, client: Client) -> PresentedToken:
        try:
            claims = jwt.decode(
                token,
                self._keys.verification_keys(),
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=client.client_id,  # issued to this client (OIDC Core §2 `aud`)
                required=("sub", "exp", "iat"),
                typ="JWT",
                now=self._clock(),
            )
        except (JoseError, ValueError):
            raise InvalidRequest(
                f"{role} is not a valid ID token of this server for this client"
            ) from None
        return PresentedToken(
            subject=str(claims["sub"]), scopes=frozenset(), expires_at=int(claims["exp"])
        )

    async def _read_external(self, token: str, role: str, client: Client) -> PresentedToken:
        if self._external is None or not client.exchange_external:
            raise InvalidRequest(f"{role} comes from an issuer this client may not exchange")
        try:
            principal = await self._external.verify_token(token)
        except TokenRejected as exc:
            raise InvalidRequest(f"{role} was rejected: {exc.reason.value}") from None
        claims = principal.claims
        if not principal.subject or principal.expires_at is None:
            raise InvalidRequest(f"{role} has no subject or no expiry")
        return PresentedToken(
            subject=principal.subject,
            scopes=principal.scopes,
            expires_at=int(principal.expires_at),
            act=_object(claims.get("act")),
            may_act=_object(claims.get("may_act")),
            issuer=principal.issuer,
        )


def _claimed_issuer(token: str) -> str | None:
    """The unverified `iss` of a JWT-shaped token (only to choose who verifies it), else None."""
    if token.count(".") != 2:
        return None
    try:
        issuer = jwt.peek(token).issuer
    except (JoseError, ValueError):
        return None
    return issuer


def _object(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, dict) else None
