"""JSON Web Token (RFC 7519) with the RFC 8725 validation rules: a compact JWS plus a claims policy.

`decode` verifies the signature (through `jws.verify`), then the claims: `exp`, `nbf` and `iat` must be
finite NumericDates (not booleans, not beyond 2**53), `iss` must equal the expected issuer, `aud` may be
a string or an array of strings and must name the caller when present (RFC 7519 §4.1.3), `typ` is
compared as RFC 7515 §4.1.9 and RFC 8725 §3.11 describe, and `b64: false` is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from authgate.jose import jwe, jws
from authgate.jose._json import dumps, loads_object
from authgate.jose.errors import ExpiredToken, InvalidClaim, MalformedToken, NotYetValid
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet

__all__ = [
    "IAT_FUTURE_ALLOWANCE",
    "decode",
    "decode_nested",
    "encode",
    "encode_nested",
    "validate_claims",
]

# An `iat` this far (seconds, beyond the leeway) in the future is refused: clocks disagree by
# seconds, not minutes, and a far-future `iat` is a forged or broken token.
IAT_FUTURE_ALLOWANCE = 60
_MAX_NUMERIC_DATE = 2**53
_STRING_CLAIMS = ("iss", "sub", "jti")


def encode(
    claims: Mapping[str, Any], key: JWK, alg: str, header: Mapping[str, Any] | None = None
) -> str:
    """Sign `claims` as a compact JWT. `typ` defaults to `JWT`; the key's `kid` is added."""
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    protected = {"typ": "JWT", **(header or {})}
    if "b64" in protected:
        raise MalformedToken("a JWT payload is always base64url-encoded (no 'b64')")
    return jws.sign(dumps(dict(claims)), key, alg, protected)


def decode(
    token: str | bytes,
    key: JWK | JWKSet,
    *,
    algorithms: Iterable[str],
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    typ: str | None = None,
    now: float | None = None,
    max_size: int = jws.MAX_TOKEN_SIZE,
) -> dict[str, Any]:
    """Verify a compact JWT and its claims; return the claims or raise a `JoseError` subclass.

    `issuer`/`audience`: the expected value (or any of several). When the token carries `aud` and no
    `audience` is given, it is rejected. `required`: claim names that must be present. `typ`: the
    expected header `typ` (for example `at+jwt`). `now`: the time, in seconds since the epoch.
    """
    verified = jws.verify(token, key, algorithms, max_size=max_size)
    if "b64" in verified.header:
        raise MalformedToken("a JWT must not use the 'b64' header")
    if typ is not None:
        check_typ(verified.header.get("typ"), typ)
    claims = loads_object(verified.payload, "claims")
    validate_claims(claims, issuer=issuer, audience=audience, leeway=leeway, required=required,
                    now=now)
    return claims


def check_typ(actual: object, expected: str) -> None:
    """Compare media types as RFC 7515 §4.1.9 says: case-insensitive, `application/` optional."""
    if not isinstance(actual, str) or _media_type(actual) != _media_type(expected):
        raise InvalidClaim("typ", f"token type must be {expected!r}")


def _media_type(value: str) -> str:
    value = value.lower()
    return value[12:] if value.startswith("application/") else value


def validate_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    now: float | None = None,
) -> None:
    """Apply the claims policy to already-verified claims (shared with nested JWTs)."""
    for name in required:
        if name not in claims:
            raise InvalidClaim(name, f"missing required claim {name!r}")
    current = time.time() if now is None else now
    exp = claims.get("exp")
    if exp is not None and _numeric_date(exp, "exp") <= current - leeway:
        raise ExpiredToken()
    nbf = claims.get("nbf")
    if nbf is not None and _numeric_date(nbf, "nbf") > current + leeway:
        raise NotYetValid("nbf")
    iat = claims.get("iat")
    if iat is not None and _numeric_date(iat, "iat") > current + leeway + IAT_FUTURE_ALLOWANCE:
        raise NotYetValid("iat", "token was issued in the future")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidClaim(name, f"claim {name!r} must be a string")
    if issuer is not None:
        iss = claims.get("iss")
        if iss is None or not _matches(iss, issuer):
            raise InvalidClaim("iss", "unexpected issuer")
    if "aud" in claims or audience is not None:
        _check_audience(claims.get("aud"), audience)


def _numeric_date(value: object, name: str) -> float:
    # bool is an int subclass: `"exp": true` must not pass as 1.
    if type(value) is int or type(value) is float:
        if math.isfinite(value) and -_MAX_NUMERIC_DATE <= value <= _MAX_NUMERIC_DATE:
            return value
    raise InvalidClaim(name, f"claim {name!r} must be a NumericDate")


def _matches(value: str, expected: str | Collection[str]) -> bool:
    return value == expected if isinstance(expected, str) else value in expected


def _check_audience(aud: object, audience: str | Collection[str] | None) -> None:
    if aud is None:
        raise InvalidClaim("aud", "token has no audience")
    if isinstance(aud, str):
        values: list[Any] = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        values = aud
    else:
        raise InvalidClaim("aud", "claim 'aud' must be a string or an array of strings")
    if audience is None:
        raise InvalidClaim("aud", "token has an audience but none is expected")
    if not any(_matches(a, audience) for a in values):
        raise InvalidClaim("aud", "token is not intended for this audience")


# -- nested JWTs: signed, then encrypted (RFC 7519 §5.2, §11.2) --------------------------------


def encode_nested(  # noqa: PLR0917 - positional order is the public contract (issue 2)
    claims: Mapping[str, Any],
    signing_key: JWK,
    alg: str,
    encryption_key: JWK,
    key_alg: str,
    enc: str,
    *,
    header: Mapping[str, Any] | None = None,
) -> str:
    """Sign `claims` as a JWT with `alg`, then encrypt it to `encryption_key` (`key_alg`, `enc`).

    The JWE header carries `cty: JWT`; `header` adds members to the JWE header.
    """
    if (header or {}).get("cty", "JWT") != "JWT":
        raise MalformedToken("a nested JWT's JWE header has cty 'JWT'")
    outer = {**(header or {}), "cty": "JWT"}
    inner = encode(claims, signing_key, alg)
    return jwe.encrypt(inner.encode("ascii"), encryption_key, key_alg, enc, outer)


def decode_nested(
    token: str | bytes,
    decryption_key: JWK | JWKSet,
    verification_key: JWK | JWKSet,
    *,
    algorithms: Iterable[str],
    key_algorithms: Iterable[str],
    encryptions: Iterable[str],
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    typ: str | None = None,
    now: float | None = None,
    max_size: int = jws.MAX_TOKEN_SIZE,
) -> dict[str, Any]:
    """Decrypt a nested JWT, then verify the signed JWT inside it and its claims.

    `key_algorithms` and `encryptions` are the JWE allow-lists, `algorithms` the JWS one; the JWE
    must declare `cty: JWT`. The claim options are those of `decode` (`typ` applies to the inner
    JWT).
    """
    decrypted = jwe.decrypt(
        token,
        decryption_key,
        algorithms=key_algorithms,
        encryptions=encryptions,
        max_size=max_size,
    )
    cty = decrypted.header.get("cty")
    # RFC 7519 §5.2: cty "JWT" marks a nested JWT; media types compare case-insensitively.
    if not isinstance(cty, str) or _media_type(cty) != "jwt":
        raise MalformedToken("a nested JWT must declare cty 'JWT' in its JWE header")
    return decode(
        decrypted.plaintext,
        verification_key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        required=required,
        typ=typ,
        now=now,
        max_size=max_size,
    )
