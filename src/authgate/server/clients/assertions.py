"""`private_key_jwt` client authentication (RFC 7523 §2.2, §3; RFC 7521 §4.2; OIDC Core §9).

The assertion must be signed by a key the client registered, with an algorithm that key is bound
to (the allow-list comes from the client's keys, never from the token; HMAC is refused). `iss` and
`sub` are the client_id; `aud` names this issuer, the token endpoint or the endpoint called (RFC
7523 §3 item 3), or with `tokens.client_assertion_audience = "issuer"` only the issuer, as its sole
value (draft-ietf-oauth-rfc7523bis §4: an assertion a client made for another server that lists our
token endpoint as its own cannot be replayed here); `exp` is required and near (at most
`client_assertion_max_lifetime` ahead); `jti` is required and single-use until `exp` (§3 item 7),
enforced in the database so a replay to another process fails too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from authgate.jose import JoseError, JWKSet, KeyNotFound, MalformedToken, jwt
from authgate.jose.jwk import algorithms_for
from authgate.oauth.errors import InvalidClient
from authgate.server.clients.fapi2 import FAPI2
from authgate.server.clients.jwks import ClientKeyError, ClientKeys
from authgate.server.config import FAPI2_ALGORITHMS, FAPI2_FUTURE_IAT, ISSUER_ONLY
from authgate.server.models import Client
from authgate.server.storage.protocols import ReplayStore

__all__ = ["ASSERTION_TYPE", "ClientAssertionVerifier", "unverified_subject"]

_log = logging.getLogger("authgate.server.client_auth")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_ASSERTION = 8 * 1024
_MAX_JTI = 256
_LEEWAY = 30
# The key families a client may sign assertions with: no `oct` (HMAC is refused) and no secp256k1.
# Which algorithms each family serves comes from the jose table.
_FAMILIES = (
    ("RSA", None),
    ("EC", "P-256"),
    ("EC", "P-384"),
    ("EC", "P-521"),
    ("OKP", "Ed25519"),
    ("OKP", "Ed448"),
)
ASSERTION_ALGORITHMS = tuple(
    dict.fromkeys(alg for kty, crv in _FAMILIES for alg in algorithms_for(kty, crv, use="sig"))
)


def unverified_subject(assertion: str) -> str | None:
    """The UNVERIFIED `sub` of an assertion, only to find which client's keys to use.

    None unless the assertion decodes as strictly as `jwt.decode` will read it (`jwt.peek`) and
    its `sub` is a string.
    """
    try:
        sub = jwt.peek(assertion, max_size=_MAX_ASSERTION).claims.get("sub")
    except MalformedToken:
        return None
    return sub if isinstance(sub, str) else None


def allowed_algorithms(keys: JWKSet) -> list[str]:
    """The assertion algorithms the client's keys permit."""
    out: list[str] = []
    for key in keys:
        if key.use not in (None, "sig"):
            continue
        candidates = (key.alg,) if key.alg else algorithms_for(key.kty, key.crv, use="sig")
        out.extend(alg for alg in candidates if alg in ASSERTION_ALGORITHMS)
    return list(dict.fromkeys(out))


class ClientAssertionVerifier:
    """Checks client assertions for one issuer."""

    def __init__(
        self,
        *,
        issuer: str,
        token_endpoint: str,
        max_lifetime: int,
        audience_rule: str,
        client_keys: ClientKeys,
        replay: ReplayStore,
        clock: Callable[[], float],
    ) -> None:
        self._issuer = issuer
        self._token_endpoint = token_endpoint
        self._max_lifetime = max_lifetime
        self._issuer_only = audience_rule == ISSUER_ONLY
        self._client_keys = client_keys
        self._replay = replay
        self._clock = clock

    async def verify(self, client: Client, assertion: str, endpoint_url: str) -> None:
        """Return when `assertion` authenticates `client`; raise `InvalidClient` otherwise."""
        if len(assertion) > _MAX_ASSERTION:
            raise InvalidClient("client authentication failed", debug="assertion too large")
        claims = await self._verified_claims(client, assertion, endpoint_url)
        now = self._clock()
        if client.profile == FAPI2 and claims["aud"] != self._issuer:
            # FAPI 2.0 §5.3.2.1: only the issuer identifier, as a string.
            raise InvalidClient(
                "a FAPI 2.0 client assertion's aud must be the issuer identifier as a string"
            )
        if client.profile == FAPI2 and _ahead_of(claims, now) > FAPI2_FUTURE_IAT[1]:
            # FAPI 2.0 §5.3.2.1 (clause 13): an iat or nbf over 60 s ahead is refused.
            raise InvalidClient("client authentication failed", debug="iat or nbf too far ahead")
        if self._issuer_only and claims["aud"] not in (self._issuer, [self._issuer]):
            # rfc7523bis §4: the issuer as the sole audience value.
            raise InvalidClient("client authentication failed", debug="aud not only the issuer")
        if claims.get("sub") != client.client_id:
            raise InvalidClient("client authentication failed", debug="assertion sub mismatch")
        if claims["exp"] - now > self._max_lifetime + _LEEWAY:
            raise InvalidClient("client assertion lifetime too long")
        jti = claims["jti"]
        if not jti or len(jti) > _MAX_JTI:
            raise InvalidClient("client authentication failed", debug="bad jti")
        first_use = await self._replay.consume_once(
            "private_key_jwt",
            f"{client.client_id} {jti}",
            math.ceil(claims["exp"]) + _LEEWAY,
            int(now),
        )
        if not first_use:
            raise InvalidClient("client assertion was already used")

    async def _verified_claims(
        self, client: Client, assertion: str, endpoint_url: str
    ) -> dict[str, Any]:
        if self._issuer_only or client.profile == FAPI2:
            audiences = [self._issuer]
        else:
            audiences = list(dict.fromkeys([self._issuer, self._token_endpoint, endpoint_url]))
        missing_kid = None
        for _attempt in range(2):
            try:
                keys = await self._client_keys.keys_for(client, kid_missing=missing_kid)
            except ClientKeyError as exc:
                _log.warning("client %s keys unavailable: %s", client.client_id, exc)
                raise InvalidClient(f"client authentication failed: {exc.public}") from None
            algorithms = allowed_algorithms(keys)
            if client.profile == FAPI2:  # FAPI 2.0 §5.4.1: PS256, ES256 or EdDSA only
                algorithms = [alg for alg in algorithms if alg in FAPI2_ALGORITHMS]
            if not algorithms:
                raise InvalidClient("client authentication failed", debug="no usable keys")
            try:
                return jwt.decode(
                    assertion,
                    keys,
                    algorithms=algorithms,
                    issuer=client.client_id,
                    audience=audiences,
                    leeway=_LEEWAY,
                    required=("iss", "sub", "aud", "exp", "jti"),
                    now=self._clock(),
                    max_size=_MAX_ASSERTION,
                )
            except KeyNotFound:
                if client.jwks_uri is None or missing_kid is not None:
                    raise InvalidClient(
                        "client authentication failed", debug="kid unknown"
                    ) from None
                missing_kid = _header_kid(assertion)
            except JoseError as exc:
                raise InvalidClient("client authentication failed", debug=exc.code) from None
        raise InvalidClient("client authentication failed", debug="kid unknown")


def _ahead_of(claims: dict[str, Any], now: float) -> float:
    """How far the later of the (checked, numeric) `iat` and `nbf` lies ahead of `now`."""
    return max((claims[name] - now for name in ("iat", "nbf") if name in claims), default=0.0)


def _header_kid(assertion: str) -> str:
    """The UNVERIFIED header `kid`, only to ask for a refetch of the client's keys."""
    try:
        return jwt.peek(assertion, max_size=_MAX_ASSERTION).kid or ""
    except MalformedToken:
        return ""
