"""JSON Web Signature, compact serialization (RFC 7515 §3.1, §5, §7.1) and RFC 7797 (`b64: false`).

Verification is driven by the caller: `algorithms` is a required, non-empty allow-list; `none` never
verifies; the key comes from the caller (`JWK` or `JWKSet`), and the header's `kid` only looks a key up
by exact match in the caller's set. `jwk`, `jku`, `x5u` and `x5c` headers are ignored: they never
select or supply a key and nothing is fetched (RFC 8725 §3.10). Unknown `crit` members are rejected
(RFC 7515 §4.1.11). Tokens over `max_size` are rejected before any decoding or cryptography.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from authgate.jose._b64 import b64decode, b64encode
from authgate.jose._json import dumps, loads_object
from authgate.jose.algorithms import JWS_ALGORITHMS
from authgate.jose.errors import AlgorithmNotAllowed, InvalidSignature, MalformedToken
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet, candidate_keys
from authgate.jose.signatures import ALGORITHMS

__all__ = ["MAX_TOKEN_SIZE", "VerifiedJWS", "sign", "verify"]

MAX_TOKEN_SIZE = 64 * 1024
# RFC 7515 §4.1: names that may not appear in `crit`.
_REGISTERED = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc", "zip",
     "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"}
)
_UNDERSTOOD_CRIT = frozenset({"b64"})


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A verified JWS: its protected header and its payload."""

    header: dict[str, Any]
    payload: bytes


def sign(
    payload: bytes,
    key: JWK,
    alg: str,
    header: Mapping[str, Any] | None = None,
    *,
    detached: bool = False,
) -> str:
    """Sign `payload` and return the compact serialization.

    The key's `kid` is added to the header unless `header` sets one. `header` may not set `alg`.
    With `detached=True` the payload segment is left empty (RFC 7515 Appendix F). An RFC 7797
    unencoded payload is produced when `header` holds `"b64": false` (with `"crit": ["b64"]`).
    """
    if not isinstance(payload, bytes):
        raise TypeError("payload must be bytes")
    if alg not in JWS_ALGORITHMS:
        raise AlgorithmNotAllowed(f"unsupported JWS algorithm {alg!r}")
    key.check(alg, "sign", private=True)
    protected: dict[str, Any] = {"alg": alg}
    if key.kid is not None:
        protected["kid"] = key.kid
    for name, value in (header or {}).items():
        if name == "alg" and value != alg:
            raise MalformedToken("header 'alg' conflicts with the alg argument")
        protected[name] = value
    header_segment = b64encode(dumps(protected))
    encoded = _validate_header(protected)
    if encoded:
        payload_segment = b64encode(payload)
    else:
        if b"." in payload and not detached:
            raise MalformedToken("an unencoded payload containing '.' must be detached")
        payload_segment = payload
    signing_input = header_segment + b"." + payload_segment
    signature = ALGORITHMS[alg][0](key, signing_input)
    out = header_segment + b"." + (b"" if detached else payload_segment) + b"." + b64encode(signature)
    try:
        return out.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedToken("an unencoded payload must be ASCII in compact form") from None


def verify(
    token: str | bytes,
    key: JWK | JWKSet,
    algorithms: Iterable[str],
    *,
    detached_payload: bytes | None = None,
    max_size: int = MAX_TOKEN_SIZE,
) -> VerifiedJWS:
    """Verify a compact JWS with `key` (or a key from the set) under the `algorithms` allow-list.

    Returns the header and payload, or raises a `JoseError` subclass.
    """
    if isinstance(algorithms, str):
        raise AlgorithmNotAllowed("algorithms must be a list of names, not a string")
    allowed = _allow_list(algorithms if isinstance(algorithms, tuple) else tuple(algorithms))
    data = _as_ascii(token, max_size)
    if data.count(b".") != 2:
        raise MalformedToken("a compact JWS has exactly three segments")
    header_segment, payload_segment, signature_segment = data.split(b".")
    header, encoded = _parse_header(header_segment)
    alg = header["alg"]
    if alg not in allowed:
        raise AlgorithmNotAllowed(f"algorithm {alg!r} is not allowed")
    keys = candidate_keys(key, header.get("kid"), alg, "verify", private=False)
    signature = b64decode(signature_segment, "signature")
    if detached_payload is not None:
        if payload_segment:
            raise MalformedToken("a detached payload was given but the token carries one")
        payload_segment = b64encode(detached_payload) if encoded else detached_payload
        signing_input = header_segment + b"." + payload_segment
        payload = detached_payload
    else:
        signing_input = data[: len(header_segment) + 1 + len(payload_segment)]
        payload = b64decode(payload_segment, "payload") if encoded else payload_segment
    check = ALGORITHMS[alg][1]
    for candidate in keys:
        if check(candidate, signing_input, signature):
            return VerifiedJWS(dict(header), payload)
    raise InvalidSignature()


def _as_ascii(token: str | bytes, max_size: int) -> bytes:
    if len(token) > max_size:
        raise MalformedToken(f"token exceeds {max_size} bytes")
    if isinstance(token, str):
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
    if isinstance(token, bytes):
        return token
    raise MalformedToken("token must be str or bytes")


@lru_cache(maxsize=256)
def _allow_list(algorithms: tuple[str, ...]) -> frozenset[str]:
    if not algorithms:
        raise AlgorithmNotAllowed("an explicit, non-empty algorithm allow-list is required")
    for alg in algorithms:
        if alg not in JWS_ALGORITHMS:
            raise AlgorithmNotAllowed(f"unsupported JWS algorithm {alg!r} in the allow-list")
    return frozenset(algorithms)


@lru_cache(maxsize=512)
def _parse_header(segment: bytes) -> tuple[dict[str, Any], bool]:
    """Decode and validate a protected header; cached because tokens from one issuer share it.

    The cached dict is never handed out; callers receive a copy.
    """
    header = loads_object(b64decode(segment, "header"), "header")
    return header, _validate_header(header)


def _validate_header(header: Mapping[str, Any]) -> bool:
    """Check a JWS header; return whether the payload is base64url-encoded (RFC 7797 `b64`)."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise MalformedToken("header 'alg' must be a string")
    if alg == "none":
        raise AlgorithmNotAllowed("unsecured JWS (alg 'none') is never accepted")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise MalformedToken(f"header {name!r} must be a string")
    crit = header.get("crit")
    if crit is not None:
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise MalformedToken("header 'crit' must be a non-empty array of strings")
        if len(set(crit)) != len(crit):
            raise MalformedToken("header 'crit' lists a name twice")
        for name in crit:
            if name in _REGISTERED or name not in header:
                raise MalformedToken(f"header 'crit' lists {name!r} improperly")
            if name not in _UNDERSTOOD_CRIT:
                raise MalformedToken(f"critical header {name!r} is not understood")
    if "b64" in header:
        b64 = header["b64"]
        if not isinstance(b64, bool):
            raise MalformedToken("header 'b64' must be a boolean")
        # RFC 7797 §6: b64 must be understood, so it must be listed in crit.
        if crit is None or "b64" not in crit:
            raise MalformedToken("header 'b64' must be listed in 'crit'")
        return b64
    return True
