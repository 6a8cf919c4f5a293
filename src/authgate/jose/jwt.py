"""JSON Web Token (RFC 7519) with the RFC 8725 validation rules: a compact JWS plus a claims policy.

`decode` verifies the signature (through `jws.verify_compact`), then the claims:

- `exp`, `nbf` and `iat` must be NumericDates (RFC 7519 §2): JSON numbers, not booleans, not
  strings, finite and within ±2**53 (so `1e400`, which parses as infinity, is refused);
- `iss`, `sub` and `jti` must be strings; `aud` a string or a non-empty array of strings, and when
  the token has one it must name the caller (RFC 7519 §4.1.3), unless the caller explicitly takes
  any audience (`ANY_AUDIENCE`);
- an `iat` more than `IAT_FUTURE_ALLOWANCE` seconds (beyond the leeway) in the future is refused;
- `typ` is compared as RFC 7515 §4.1.9 and RFC 8725 §3.11 describe, and `b64` is refused (a JWT
  payload is always base64url-encoded, RFC 7797 §7).

`encode` applies the same type rules to the claims it signs. `peek` reads a JWT's header and claims
WITHOUT verifying anything, only to route a token to its issuer and keys before `decode`.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from authgate.jose import jwe, jws
from authgate.jose._b64 import b64decode
from authgate.jose._json import dumps, loads_object
from authgate.jose.errors import ExpiredToken, InvalidClaim, MalformedToken, NotYetValid
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet
from authgate.jose.jws import _as_ascii

__all__ = [
    "ANY_AUDIENCE",
    "IAT_FUTURE_ALLOWANCE",
    "UnverifiedJWT",
    "decode",
    "decode_nested",
    "encode",
    "encode_nested",
    "peek",
    "validate_claims",
]

# An `iat` this far (seconds, beyond the leeway) in the future is refused: clocks disagree by
# seconds, not minutes, and a far-future `iat` is a forged or broken token.
IAT_FUTURE_ALLOWANCE = 60
_MAX_DATE = 2**53
_MIN_DATE = -_MAX_DATE
_MISSING: Any = object()
_INF = math.inf
_time = time.time


class _AnyAudience(enum.Enum):
    ANY_AUDIENCE = "any audience"

    def __repr__(self) -> str:
        return "jwt.ANY_AUDIENCE"


# `audience=ANY_AUDIENCE`: the token must carry a well-formed `aud`, whatever it names. Never a
# default: a service that accepted any audience would take tokens minted for another one.
ANY_AUDIENCE: Final = _AnyAudience.ANY_AUDIENCE
_Audience: TypeAlias = str | Collection[str] | _AnyAudience | None


def encode(
    claims: Mapping[str, Any], key: JWK, alg: str, header: Mapping[str, Any] | None = None
) -> str:
    """Sign `claims` as a compact JWT. `typ` defaults to `JWT`; the key's `kid` is added.

    Registered claims must have their RFC 7519 types (`InvalidClaim` otherwise).
    """
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    _registered_claims(claims)
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
    audience: _Audience = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    typ: str | None = None,
    now: float | None = None,
    max_size: int = jws.MAX_TOKEN_SIZE,
) -> dict[str, Any]:
    """Verify a compact JWT and its claims; return the claims or raise a `JoseError` subclass.

    `issuer`/`audience`: the expected value (or any of several). When the token carries `aud` and
    no `audience` is given, it is rejected; `audience=ANY_AUDIENCE` takes any `aud` but still
    requires one. `required`: claim names that must be present. `typ`:
    the expected header `typ` (for example `at+jwt`). `leeway`: seconds of clock skew tolerated.
    `now`: the time, in seconds since the epoch (default: the system clock).
    """
    header, payload = jws.verify_compact(
        token, key, algorithms, max_size=max_size, unencoded_allowed=False
    )
    if typ is not None:
        check_typ(header.params.get("typ"), typ)
    claims = loads_object(payload, "claims")
    _check_claims(claims, issuer, audience, leeway, required, now)
    return claims


@dataclass(frozen=True, slots=True)
class UnverifiedJWT:
    """The header and claims of a compact JWT whose signature has NOT been checked (see `peek`)."""

    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issuer(self) -> str | None:
        """The UNVERIFIED `iss` claim, when it is a string."""
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def kid(self) -> str | None:
        """The UNVERIFIED header `kid`, when it is a string."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def alg(self) -> str | None:
        """The UNVERIFIED header `alg`, when it is a string."""
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else None


def peek(token: str | bytes, *, max_size: int = jws.MAX_TOKEN_SIZE) -> UnverifiedJWT:
    """Decode a compact JWT's header and claims WITHOUT verifying anything.

    The result is attacker-controlled. It may only pick among the caller's own configured issuers
    and key sets (an `iss`, a `kid`) before `decode` verifies the token; it never selects an
    algorithm, a key source or a URL (RFC 7515 §7.1, RFC 8725 §3.10). Decoding is as strict as
    `decode`'s, so a token cannot read one way here and another way there: at most `max_size`
    bytes of ASCII, three segments, canonical base64url, header and claims JSON objects without
    duplicate members. Nothing else is checked (not `alg`, `crit`, `b64`, the signature or any
    claim). Raises `MalformedToken`.
    """
    data = _as_ascii(token, max_size)
    parts = data.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a compact JWS has exactly three segments")
    header = loads_object(b64decode(parts[0], "header"), "header")
    claims = loads_object(b64decode(parts[1], "payload"), "claims")
    return UnverifiedJWT(header, claims)


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
    audience: _Audience = None,
    leeway: float = 0,
    required: Iterable[str] = (),
    now: float | None = None,
) -> None:
    """Apply the claims policy to already-verified claims (shared with nested JWTs)."""
    _check_claims(claims, issuer, audience, leeway, required, now)


def _check_claims(  # noqa: PLR0917 - positional: the per-token hot path
    claims: Mapping[str, Any],
    issuer: str | Collection[str] | None,
    audience: _Audience,
    leeway: float,
    required: Iterable[str],
    now: float | None,
) -> None:
    # A NaN or infinite `now` or `leeway` would make every comparison below false: nothing would
    # ever expire.
    if now is None:
        now = _time()
    elif not -_INF < now < _INF:
        raise ValueError("now must be a finite time")
    if not 0 <= leeway < _INF:
        raise ValueError("leeway must be a finite number >= 0")
    if required:
        for name in required:
            if name not in claims:
                raise InvalidClaim(name, f"missing required claim {name!r}")
    exp, nbf, iat, iss, aud = _registered_claims(claims)
    if exp is not _MISSING and exp <= now - leeway:
        raise ExpiredToken()
    if nbf is not _MISSING and nbf > now + leeway:
        raise NotYetValid("nbf")
    if iat is not _MISSING and iat > now + leeway + IAT_FUTURE_ALLOWANCE:
        raise NotYetValid("iat", "token was issued in the future")
    if issuer is not None and (
        iss is _MISSING or not (iss == issuer if type(issuer) is str else iss in issuer)
    ):
        raise InvalidClaim("iss", "unexpected issuer")
    if aud is _MISSING:
        if audience is not None:
            raise InvalidClaim("aud", "token has no audience")
    elif audience is None:
        raise InvalidClaim("aud", "token has an audience but none is expected")
    elif audience is ANY_AUDIENCE:
        pass  # its type was checked above
    elif not (
        (aud == audience or (type(aud) is list and audience in aud))
        if type(audience) is str
        else any(a in audience for a in ((aud,) if type(aud) is str else aud))
    ):
        raise InvalidClaim("aud", "token is not intended for this audience")


def _registered_claims(claims: Mapping[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """Check the types of the registered claims (RFC 7519 §4.1); return exp, nbf, iat, iss, aud.

    An absent claim is returned as `_MISSING`; a present one with the wrong type (`null`
    included) raises `InvalidClaim`. The `int` tests are fast paths for the usual case,
    `_numeric_date` holds the rule.
    """
    get = claims.get
    exp = get("exp", _MISSING)
    if exp is not _MISSING and not (type(exp) is int and _MIN_DATE <= exp <= _MAX_DATE):
        exp = _numeric_date(exp, "exp")
    nbf = get("nbf", _MISSING)
    if nbf is not _MISSING and not (type(nbf) is int and _MIN_DATE <= nbf <= _MAX_DATE):
        nbf = _numeric_date(nbf, "nbf")
    iat = get("iat", _MISSING)
    if iat is not _MISSING and not (type(iat) is int and _MIN_DATE <= iat <= _MAX_DATE):
        iat = _numeric_date(iat, "iat")
    iss = get("iss", _MISSING)
    if iss is not _MISSING and type(iss) is not str:
        raise InvalidClaim("iss", "claim 'iss' must be a string")
    if type(get("sub", "")) is not str:
        raise InvalidClaim("sub", "claim 'sub' must be a string")
    if type(get("jti", "")) is not str:
        raise InvalidClaim("jti", "claim 'jti' must be a string")
    aud = get("aud", _MISSING)
    if (
        aud is not _MISSING
        and type(aud) is not str
        and not (type(aud) is list and aud and all(type(a) is str for a in aud))
    ):
        raise InvalidClaim("aud", "claim 'aud' must be a string or a non-empty array of strings")
    return exp, nbf, iat, iss, aud


def _numeric_date(value: Any, name: str) -> float:
    # `type() is` rather than isinstance: bool is an int subclass and `"exp": true` is not 1. The
    # range test also refuses NaN (every comparison with NaN is false) and infinities.
    if (type(value) is int or type(value) is float) and _MIN_DATE <= value <= _MAX_DATE:
        return value
    raise InvalidClaim(name, f"claim {name!r} must be a NumericDate")


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
    audience: _Audience = None,
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
