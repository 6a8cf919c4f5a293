"""JSON Web Signature, compact serialization (RFC 7515 §3.1, §5, §7.1) and RFC 7797 (`b64: false`).

Verification is driven by the caller: `algorithms` is a required, non-empty allow-list; `none`
never verifies, whatever its spelling; the key comes from the caller (`JWK` or `JWKSet`), and the
header's `kid` only looks a key up by exact match in the caller's set. `jwk`, `jku`, `x5u` and
`x5c` headers are ignored: they never select or supply a key and nothing is fetched (RFC 8725
§3.10). Unknown `crit` members are rejected (RFC 7515 §4.1.11). Tokens over `max_size` are rejected
before any decoding or cryptography.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from authgate.jose._algorithms import JWS_ALGORITHMS
from authgate.jose._b64 import b64decode, b64encode
from authgate.jose._json import dumps, loads_object
from authgate.jose._signatures import Verify, signer, verifier
from authgate.jose.errors import AlgorithmNotAllowed, InvalidSignature, MalformedToken
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet, candidate_keys

__all__ = [
    "MAX_TOKEN_SIZE",
    "ProtectedHeader",
    "VerifiedJWS",
    "prepared_verifier",
    "sign",
    "verify",
    "verify_compact",
]

MAX_TOKEN_SIZE = 64 * 1024
_CACHED_HEADER_SIZE = 1024
_CACHED_HEADERS = 512
# RFC 7515 §4.1.11: registered names, which may not appear in `crit` (RFC 7516 §4.1 adds the JWE
# ones, RFC 7518 §4.6.1, §4.7.1 and §4.8.1 the key-management ones).
# fmt: off
_REGISTERED = frozenset({
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
    "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
})
# fmt: on
_UNDERSTOOD_CRIT = frozenset({"b64"})


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A verified JWS: its protected header and its payload."""

    header: dict[str, Any]
    payload: bytes


class ProtectedHeader:
    """A validated protected header, shared through a cache: `params` is a read-only view."""

    __slots__ = ("alg", "encoded", "has_b64", "kid", "params")

    def __init__(self, params: dict[str, Any]) -> None:
        alg = params.get("alg")
        if not isinstance(alg, str):
            raise MalformedToken("header 'alg' must be a string")
        if alg.lower() == "none":
            raise AlgorithmNotAllowed("unsecured JWS (alg 'none') is never accepted")
        if alg not in JWS_ALGORITHMS:
            # The name comes from the token: echo a bounded prefix only.
            raise AlgorithmNotAllowed(f"unsupported JWS algorithm {alg[:40]!r}")
        for name in ("kid", "typ", "cty"):
            if name in params and not isinstance(params[name], str):
                raise MalformedToken(f"header {name!r} must be a string")
        self.params: Mapping[str, Any] = MappingProxyType(params)
        self.alg = alg
        self.kid: str | None = params.get("kid")
        self.encoded = _payload_encoded(params)
        self.has_b64 = "b64" in params


def sign(
    payload: bytes,
    key: JWK,
    alg: str,
    header: Mapping[str, Any] | None = None,
    *,
    detached: bool = False,
) -> str:
    """Sign `payload` and return the compact serialization.

    The key's `kid` is added to the header unless `header` sets one. `header` may not set another
    `alg`. With `detached=True` the payload segment is left empty (RFC 7515 Appendix F). An RFC
    7797 unencoded payload is produced when `header` holds `"b64": false` (with `"crit": ["b64"]`).
    """
    if not isinstance(payload, bytes):
        raise TypeError("payload must be bytes")
    header_segment, encoded = _header_segment(key, alg, header)
    sign_input = signer(key, alg)
    if encoded:
        payload_segment = b64encode(payload)
    elif b"." in payload and not detached:
        raise MalformedToken("an unencoded payload containing '.' must be detached")
    else:
        payload_segment = payload
    signature = b64encode(sign_input(header_segment + b"." + payload_segment))
    out = b".".join((header_segment, b"" if detached else payload_segment, signature))
    try:
        return out.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedToken("an unencoded payload must be ASCII in compact form") from None


# Encoded protected headers a signer produced, by (alg, kid, header items): a server signs with few
# keys and header shapes, and building, checking and encoding the header was a tenth of a token.
_SIGNED_HEADERS: dict[tuple[Any, ...], tuple[bytes, bool]] = {}


def _header_segment(key: JWK, alg: str, header: Mapping[str, Any] | None) -> tuple[bytes, bool]:
    """The encoded protected header for `sign`, and whether the payload is base64url-encoded."""
    # Only headers of strings are cached: their items are hashable and compare equal only when
    # they encode the same (`False == 0` would not).
    cacheable = header is None or all(type(value) is str for value in header.values())
    if cacheable:
        cache_key = (alg, key.kid, *(header.items() if header else ()))
        hit = _SIGNED_HEADERS.get(cache_key)
        if hit is not None:
            return hit
    protected: dict[str, Any] = {"alg": alg}
    if key.kid is not None:
        protected["kid"] = key.kid
    for name, value in (header or {}).items():
        if name == "alg" and value != alg:
            raise MalformedToken("header 'alg' conflicts with the alg argument")
        protected[name] = value
    encoded = ProtectedHeader(protected).encoded  # checked before anything is encoded
    result = (b64encode(dumps(protected)), encoded)
    if cacheable:
        if len(_SIGNED_HEADERS) >= _CACHED_HEADERS:
            _SIGNED_HEADERS.clear()
        _SIGNED_HEADERS[cache_key] = result
    return result


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
    header, payload = verify_compact(
        token, key, algorithms, detached_payload=detached_payload, max_size=max_size
    )
    return VerifiedJWS(dict(header.params), payload)


def verify_compact(
    token: str | bytes,
    key: JWK | JWKSet,
    algorithms: Iterable[str],
    *,
    detached_payload: bytes | None = None,
    max_size: int = MAX_TOKEN_SIZE,
    unencoded_allowed: bool = True,
) -> tuple[ProtectedHeader, bytes]:
    """`verify`, returning the shared `ProtectedHeader` (read-only) instead of a copy.

    With `unencoded_allowed=False` an RFC 7797 `b64` header is refused before any cryptography.
    """
    allowed = _allow_list(algorithms)
    data = _as_ascii(token, max_size)
    parts = data.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a compact JWS has exactly three segments")
    header_segment, payload_segment, signature_segment = parts
    header = _HEADERS.get(header_segment) or _parse_header(header_segment)
    if header.has_b64 and not unencoded_allowed:
        raise MalformedToken("the 'b64' header is not allowed here")
    alg = header.alg
    if alg not in allowed:
        raise AlgorithmNotAllowed(f"algorithm {alg!r} is not allowed")
    # Prepared verifiers, cached on the key or the set; the binding is checked on first use.
    checks: Iterable[Verify]
    if type(key) is JWK:
        checks = (key._verifiers.get(alg) or verifier(key, alg),)
    elif type(key) is JWKSet:
        checks = key._verifiers.get((header.kid, alg)) or _set_verifiers(key, header.kid, alg)
    else:
        checks = [verifier(k, alg) for k in candidate_keys(key, header.kid, alg)]
    signature = b64decode(signature_segment, "signature")
    if detached_payload is None:
        signing_input = data[: len(header_segment) + 1 + len(payload_segment)]
        payload = b64decode(payload_segment, "payload") if header.encoded else payload_segment
    elif payload_segment:
        raise MalformedToken("a detached payload was given but the token carries one")
    else:
        payload = detached_payload
        encoded = b64encode(payload) if header.encoded else payload
        signing_input = header_segment + b"." + encoded
    for check in checks:
        if check(signing_input, signature):
            return header, payload
    raise InvalidSignature()


def prepared_verifier(key: JWK, alg: str) -> Verify:
    """`key`'s signature check for `alg`, prepared once and cached on the key:
    `check(signing_input, signature) -> bool`, False for any bad signature (never raises then).

    Raises `AlgorithmNotAllowed` or `InvalidKey` unless the key may verify with `alg`. For callers
    that parse a compact JWS themselves because they check its header in their own way (a DPoP
    proof carries its key in its header): everything else about the JWS is theirs to check.
    """
    return verifier(key, alg)


def _set_verifiers(keys: JWKSet, kid: str | None, alg: str) -> tuple[Verify, ...]:
    checks = tuple(verifier(k, alg) for k in candidate_keys(keys, kid, alg))
    keys._verifiers[(kid, alg)] = checks  # only lookups that found keys get here: bounded
    return checks


def _as_ascii(token: str | bytes, max_size: int) -> bytes:
    """The token's bytes; raise before any decoding when it is over `max_size` or not ASCII."""
    if type(token) is str:
        if len(token) > max_size:
            raise MalformedToken(f"token exceeds {max_size} bytes")
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
    if not isinstance(token, bytes):
        raise MalformedToken("token must be str or bytes")
    if len(token) > max_size:
        raise MalformedToken(f"token exceeds {max_size} bytes")
    return bytes(token)


def _allow_list(algorithms: Iterable[str]) -> Collection[str]:
    """The caller's allow-list, checked: non-empty, and only supported JWS algorithm names.

    This also refuses `none` in any spelling: it is never a JWS algorithm here.
    """
    if type(algorithms) is not list and type(algorithms) is not tuple:
        if isinstance(algorithms, str):
            raise AlgorithmNotAllowed("algorithms must be a list of names, not a string")
        try:
            algorithms = tuple(algorithms)
        except TypeError:
            raise AlgorithmNotAllowed("algorithms must be a list of algorithm names") from None
    if not algorithms:
        raise AlgorithmNotAllowed("an explicit, non-empty algorithm allow-list is required")
    for alg in algorithms:
        if type(alg) is not str or alg not in JWS_ALGORITHMS:
            raise AlgorithmNotAllowed(f"unsupported JWS algorithm {alg!r} in the allow-list")
    return algorithms


def _parse_header(segment: bytes) -> ProtectedHeader:
    header = ProtectedHeader(loads_object(b64decode(segment, "header"), "header"))
    if len(segment) <= _CACHED_HEADER_SIZE:
        if len(_HEADERS) >= _CACHED_HEADERS:
            _HEADERS.clear()  # a flood of distinct headers: start over rather than grow
        _HEADERS[segment] = header
    return header


# Validated headers by their encoded segment: tokens from one issuer share a header. Only valid
# headers are stored, and only small ones, so the memory it holds stays bounded.
_HEADERS: dict[bytes, ProtectedHeader] = {}


def _payload_encoded(header: Mapping[str, Any]) -> bool:
    """Check `crit` (RFC 7515 §4.1.11) and `b64` (RFC 7797 §3, §6); return whether `b64` holds."""
    crit = header.get("crit")
    if crit is not None or "crit" in header:
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise MalformedToken("header 'crit' must be a non-empty array of strings")
        if len(set(crit)) != len(crit):
            raise MalformedToken("header 'crit' lists a name twice")
        for name in crit:
            if name in _REGISTERED or name not in header:
                raise MalformedToken(f"header 'crit' lists {name!r} improperly")
            if name not in _UNDERSTOOD_CRIT:
                raise MalformedToken(f"critical header {name!r} is not understood")
    if "b64" not in header:
        return True
    b64 = header["b64"]
    if type(b64) is not bool:
        raise MalformedToken("header 'b64' must be a boolean")
    # RFC 7797 §6: a recipient that ignored `b64` would misread the payload, so it must be crit.
    if crit is None or "b64" not in crit:
        raise MalformedToken("header 'b64' must be listed in 'crit'")
    return b64
