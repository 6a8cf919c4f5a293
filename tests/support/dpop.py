"""DPoP proofs for tests (RFC 9449 §4.2): a client key and proofs it signs, with every member
overridable so that tests can break one rule at a time."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from authgate.jose import jws
from authgate.jose.jwk import JWK
from authgate.verifier.dpop import access_token_hash

_UNSET: Any = object()


class DPoPClient:
    """A client's DPoP key (ES256 unless told) and the proofs it makes."""

    def __init__(
        self,
        kty: str = "EC",
        alg: str = "ES256",
        *,
        clock: Callable[[], float] = time.time,
        **generate: Any,
    ) -> None:
        """`clock`: the time of `iat` (a server under test may run on a clock of its own)."""
        self.alg = alg
        self.clock = clock
        self.key = JWK.generate(kty, alg=alg, **generate)
        self.public = self.key.public()
        self.jkt = self.public.thumbprint()
        self.signing_key = without_kid(self.key)

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: Any = _UNSET,
        jti: Any = _UNSET,
        typ: str = "dpop+jwt",
        jwk: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A proof for `method` `url`; `claims` override or add members, `drop` removes some."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16) if jti is _UNSET else jti,
            "htm": method,
            "htu": url,
            "iat": int(self.clock()) if iat is _UNSET else iat,
        }
        if access_token is not None:
            payload["ath"] = access_token_hash(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        for name in drop:
            payload.pop(name, None)
        public = dict(jwk) if jwk is not None else self.public.to_dict()
        public.pop("kid", None)
        header = {"typ": typ, "jwk": public}
        return sign_raw(payload, self.signing_key, self.alg, header)


def sign_raw(payload: Mapping[str, Any], key: JWK, alg: str, header: Mapping[str, Any]) -> str:
    """A compact JWS of `payload` with `alg` and exactly `header` (no `kid` added)."""
    return jws.sign(json.dumps(payload).encode(), without_kid(key), alg, dict(header))


def without_kid(key: JWK) -> JWK:
    """`key` without its `kid` (a proof's header carries the key itself)."""
    if key.kid is None:
        return key
    data = key.to_dict(private=key.is_private)
    data.pop("kid", None)
    return JWK.from_dict(data)
