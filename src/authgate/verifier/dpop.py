"""DPoP proofs (RFC 9449): the one check of a proof, for the authorization server's token endpoint
and for the gate, knowing no HTTP.

`check_proof` applies the rules of RFC 9449 §4.3 to a proof JWT presented with a request:

1. one compact JWS of at most `max_size` bytes, whose header has `typ: dpop+jwt` (§4.2);
2. `alg` is one of the allowed asymmetric algorithms (never `none` nor an HMAC, §4.3 step 5);
3. `jwk` is a public key (a private key, or a secret, in the header is refused, §4.3 step 7),
   usable with `alg`, and the signature verifies with it (step 6);
4. `jti`, `htm`, `htu` and `iat` are present (step 3); `htm` equals the request's method (step 8);
   `htu` equals the request's URI without query and fragment, both normalised as RFC 3986 §6.2.2
   and §6.2.3 say (`normalize_htu`, step 9);
5. `iat` lies within `max_age` seconds before now and `leeway` seconds after (step 11, §11.1);
6. when the server asks for a nonce, `nonce` is one it accepts (`use_dpop_nonce`, step 10, §8-§9);
7. when the proof comes with an access token, `ath` is base64url(SHA-256(token)) (step 12).

It returns the `Proof` with the key's RFC 7638 thumbprint (`jkt`), which the caller compares with
the token's `cnf.jkt` or binds to what it issues. `verify_proof` adds the single use of `jti`
(§11.1): the pair (key, `jti`) is claimed in the limits store (`authgate.limits`: memory, or Redis
shared by every process, `SET NX` with an expiry), and a second use anywhere is refused. A store
that cannot answer refuses the proof (503): a replay must not pass because Redis is down.

Every failure is an `InvalidDPoPProof` (`DPoPRejected`, with a machine `reason` for logs and
metrics) or a `UseDPoPNonce`; descriptions are fixed strings that never echo the proof.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from authgate.jose.encoding import b64url_decode, json_object
from authgate.jose.errors import JoseError, MalformedToken
from authgate.jose.jwk import JWK
from authgate.jose.jws import ProtectedHeader, prepared_verifier
from authgate.limits.memory import MemoryStore
from authgate.limits.store import Store, StoreUnavailable
from authgate.oauth.errors import InvalidDPoPProof, TemporarilyUnavailable, UseDPoPNonce

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DPOP_ALGORITHMS",
    "ClaimStore",
    "DPoPRejected",
    "DPoPRules",
    "DPoPUnavailable",
    "NonceSource",
    "Proof",
    "ProofReason",
    "access_token_hash",
    "check_proof",
    "claim_proof",
    "claim_proof_nowait",
    "normalize_htu",
    "replay_key",
    "single_proof",
    "verify_proof",
]

# What a proof may be signed with: asymmetric algorithms only (RFC 9449 §4.3 step 5: not `none`,
# not a MAC, whose "public key" would be the secret).
DPOP_ALGORITHMS = (
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA",
    "Ed25519",
)  # fmt: skip
DEFAULT_ALGORITHMS = ("ES256", "PS256", "RS256", "EdDSA", "Ed25519")
TYP = "dpop+jwt"
_MAX_JTI = 256
# Private members of every key type (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_NUMBERS = (int, float)
_same = hmac.compare_digest
_time = time.time


class ProofReason(StrEnum):
    """Why a proof was refused; metric and log labels, never sent to the client."""

    MISSING = "missing"
    MULTIPLE = "multiple"
    MALFORMED = "malformed"
    TYPE = "type"
    ALGORITHM = "algorithm"
    KEY = "key"
    PRIVATE_KEY = "private_key"
    SIGNATURE = "signature"
    CLAIMS = "claims"
    METHOD = "method"
    URI = "uri"
    IAT = "iat"
    ATH = "ath"
    NONCE = "nonce"
    REPLAY = "replay"
    KEY_MISMATCH = "key_mismatch"


_DESCRIPTIONS: dict[ProofReason, str] = {
    ProofReason.MISSING: "a DPoP proof is required",
    ProofReason.MULTIPLE: "exactly one DPoP proof is allowed",
    ProofReason.MALFORMED: "the DPoP proof is malformed",
    ProofReason.TYPE: "the DPoP proof's typ must be dpop+jwt",
    ProofReason.ALGORITHM: "the DPoP proof's algorithm is not accepted",
    ProofReason.KEY: "the DPoP proof's jwk is not an acceptable public key",
    ProofReason.PRIVATE_KEY: "the DPoP proof's jwk must not contain a private key",
    ProofReason.SIGNATURE: "the DPoP proof's signature is invalid",
    ProofReason.CLAIMS: "the DPoP proof lacks jti, htm, htu or iat",
    ProofReason.METHOD: "the DPoP proof's htm does not match the request method",
    ProofReason.URI: "the DPoP proof's htu does not match the request URI",
    ProofReason.IAT: "the DPoP proof's iat is too far from the current time",
    ProofReason.ATH: "the DPoP proof's ath does not match the access token",
    ProofReason.NONCE: "the DPoP proof's nonce is not valid",
    ProofReason.REPLAY: "the DPoP proof has already been used",
    ProofReason.KEY_MISMATCH: "the DPoP proof's key is not the one the token is bound to",
}


class DPoPRejected(InvalidDPoPProof):
    """An `invalid_dpop_proof` answer with the internal `reason`."""

    def __init__(self, reason: ProofReason, *, debug: str | None = None) -> None:
        super().__init__(_DESCRIPTIONS[reason], debug=debug)
        self.reason = reason


class DPoPUnavailable(TemporarilyUnavailable):
    """A 503: the replay store could not say whether the proof was used before."""

    def __init__(self, debug: str | None = None) -> None:
        super().__init__("the DPoP proof cannot be checked at the moment; retry later", debug=debug)
        self.retry_after = 1


@dataclass(frozen=True, slots=True)
class DPoPRules:
    """How proofs are judged: `algorithms` (asymmetric, see `DPOP_ALGORITHMS`), `max_age` seconds
    a proof stays acceptable after its `iat`, `leeway` seconds it may lie in the future (clock
    skew), `max_size` bytes."""

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    max_age: int = 60
    leeway: int = 5
    max_size: int = 8 * 1024

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("DPoP needs at least one signing algorithm")
        unknown = [a for a in self.algorithms if a not in DPOP_ALGORITHMS]
        if unknown:
            raise ValueError(
                f"DPoP algorithms must be asymmetric ({', '.join(DPOP_ALGORITHMS)}), "
                f"not {', '.join(map(repr, unknown))}"
            )
        if not 1 <= self.max_age <= 3600 or not 0 <= self.leeway <= 300:
            raise ValueError("DPoP max_age must be 1..3600 seconds and leeway 0..300")
        if not 512 <= self.max_size <= 64 * 1024:
            raise ValueError("DPoP max_size must be 512..65536 bytes")

    @property
    def replay_ttl(self) -> int:
        """How long a used `jti` must be remembered: as long as its proof could be accepted."""
        return self.max_age + self.leeway + 1


class Proof(NamedTuple):
    """A proof that passed `check_proof`: the key's thumbprint and the claims that matter.
    (Immutable; a named tuple because one is made per request and is cheaper to build than a
    frozen dataclass.)"""

    jkt: str
    jti: str
    iat: float
    htm: str
    htu: str
    nonce: str | None = None


def access_token_hash(token: str) -> str:
    """`ath` for `token` (RFC 9449 §4.2): base64url of SHA-256 of its ASCII bytes, unpadded."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# `ath` by token: a client sends one token with many proofs. Bounded.
_ATHS: dict[str, str] = {}


def _ath(token: str) -> str:
    found = _ATHS.get(token)
    if found is None:
        found = access_token_hash(token)
        if len(_ATHS) >= 4096:
            _ATHS.clear()
        _ATHS[token] = found
    return found


def normalize_htu(uri: str) -> str | None:
    """`uri` without query and fragment, normalised for comparison (RFC 9449 §4.3 step 9, RFC 3986
    §6.2.2 syntax-based: case, percent-encoding, dot segments; §6.2.3 scheme-based: default port,
    empty path). None when it is not an absolute http(s) URI."""
    try:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        host = parts.hostname  # lower-cased by urlsplit
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if "[" in parts.netloc:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_percent_normalized(parts.path)) or "/"
    return f"{scheme}://{netloc}{path}"


# Normalised URIs by their text: requests and proofs name the same few endpoints. Bounded.
_NORMALIZED: dict[str, str | None] = {}


def _normalized(uri: str) -> str | None:
    """`normalize_htu`, remembered."""
    try:
        return _NORMALIZED[uri]
    except KeyError:
        pass
    value = normalize_htu(uri)
    if len(uri) <= 2048:
        if len(_NORMALIZED) >= 4096:
            _NORMALIZED.clear()
        _NORMALIZED[uri] = value
    return value


def _percent_normalized(path: str) -> str:
    """Upper-case hex digits; decode octets of unreserved characters (RFC 3986 §6.2.2.1-2)."""

    def fix(match: re.Match[str]) -> str:
        octet = int(match.group(1), 16)
        return chr(octet) if octet in _UNRESERVED else f"%{octet:02X}"

    return _PERCENT.sub(fix, path) if "%" in path else path


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out)


@dataclass(frozen=True, slots=True)
class _Header:
    """A header that passed every check: its algorithm, its key, the key's thumbprint and the
    key's prepared verification function for that algorithm."""

    alg: str
    key: JWK
    jkt: str
    verify: Callable[[bytes, bytes], bool]


# Checked headers by their encoded segment: a client signs every proof with one key, so its
# proofs share a header, whose JSON, key parsing, key checks, thumbprint and prepared verifier
# are then paid once per key rather than once per proof. Bounded; only headers that passed every
# check are kept.
_HEADERS: dict[str, _Header] = {}
_MAX_CACHED_HEADERS = 1024


def _b64json(segment: str) -> dict[str, Any]:
    """A strict JSON object (no duplicate members, no NaN) in canonical base64url."""
    try:
        return json_object(b64url_decode(segment, "header"), "header")
    except MalformedToken as exc:
        raise DPoPRejected(ProofReason.MALFORMED, debug=str(exc)) from None


def _header(segment: str, algorithms: Collection[str]) -> _Header:
    cached = _HEADERS.get(segment)
    if cached is not None:
        if cached.alg not in algorithms:
            raise DPoPRejected(ProofReason.ALGORITHM, debug=f"alg {cached.alg} not allowed")
        return cached
    params = _b64json(segment)
    typ = params.get("typ")
    # RFC 7515 §4.1.9: media types compare case-insensitively; `application/` may be omitted.
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != TYP:
        raise DPoPRejected(ProofReason.TYPE)
    alg = params.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise DPoPRejected(ProofReason.ALGORITHM, debug=f"alg {str(alg)[:20]!r} not allowed")
    jwk = params.get("jwk")
    if not isinstance(jwk, dict):
        raise DPoPRejected(ProofReason.KEY, debug="no jwk header")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise DPoPRejected(ProofReason.PRIVATE_KEY)
    try:
        key = JWK.from_dict(jwk)
        key.check(alg, "verify", private=False)
    except JoseError as exc:
        raise DPoPRejected(ProofReason.KEY, debug=f"{exc.code}: {exc}") from None
    if key.is_private:  # pragma: no cover - the members are refused above
        raise DPoPRejected(ProofReason.PRIVATE_KEY)
    try:
        # The JWS header rules (RFC 7515 §4.1.11 `crit`, string `kid`/`cty`) as `jws.verify`
        # applies them; an RFC 7797 `b64` member is refused (§4.2: a proof is a plain JWS).
        if ProtectedHeader(params).has_b64:
            raise MalformedToken("the 'b64' header is not allowed here")
        verify = prepared_verifier(key, alg)
    except JoseError as exc:
        raise DPoPRejected(ProofReason.MALFORMED, debug=f"{exc.code}: {exc}") from None
    header = _Header(alg, key, key.thumbprint(), verify)
    if len(segment) <= 2048:
        if len(_HEADERS) >= _MAX_CACHED_HEADERS:
            _HEADERS.clear()
        _HEADERS[segment] = header
    return header


def check_proof(
    proof: str | None,
    *,
    method: str,
    uri: str,
    rules: DPoPRules,
    access_token: str | None = None,
    nonces: NonceSource | None = None,
    now: float | None = None,
) -> Proof:
    """Apply RFC 9449 §4.3 (every step but the single use of `jti`, see `verify_proof`).

    `method` and `uri` are the request's as the client sent it (the URI's query and fragment
    are ignored). `access_token`: the token presented with the proof (checks `ath`); `nonces`:
    when the server requires nonces. Raises `DPoPRejected` or `UseDPoPNonce`."""
    if not proof:
        raise DPoPRejected(ProofReason.MISSING)
    if len(proof) > rules.max_size or not proof.isascii():
        raise DPoPRejected(ProofReason.MALFORMED, debug="too large or not ASCII")
    # A compact JWS has exactly two dots (RFC 7515 §7.1); found by position rather than split, so
    # that only the header segment becomes a string (the cache key) and the rest are byte slices.
    first = proof.find(".")
    last = proof.rfind(".")
    if first < 0 or proof.find(".", first + 1, last + 1) != last:
        raise DPoPRejected(ProofReason.MALFORMED, debug="not a compact JWS")
    head = proof[:first]
    header = _HEADERS.get(head)
    if header is None or header.alg not in rules.algorithms:
        header = _header(head, rules.algorithms)
    # The JWS check (RFC 7515 §5.2) done here rather than by `jws.verify_compact`, which would
    # split, encode and look the header up a second time: the same strict base64url for both
    # segments, then the header key's prepared verifier over the ASCII signing input.
    raw = proof.encode()
    try:
        signature = b64url_decode(raw[last + 1 :], "signature")
        payload = b64url_decode(raw[first + 1 : last], "payload")
    except MalformedToken as exc:
        raise DPoPRejected(ProofReason.MALFORMED, debug=str(exc)) from None
    if not header.verify(raw[:last], signature):
        raise DPoPRejected(ProofReason.SIGNATURE, debug="signature verification failed")
    try:
        claims = json_object(payload, "payload")  # strict: a repeated member is refused
    except MalformedToken as exc:
        raise DPoPRejected(ProofReason.MALFORMED, debug=str(exc)) from None
    get = claims.get
    jti, htm, htu = get("jti"), get("htm"), get("htu")
    iat: Any = get("iat")
    if (
        type(jti) is not str
        or not 0 < len(jti) <= _MAX_JTI
        or type(htm) is not str
        or type(htu) is not str
        or type(iat) not in _NUMBERS  # not a bool (an int subclass): RFC 7519 NumericDate
    ):
        raise DPoPRejected(ProofReason.CLAIMS)
    if htm != method:  # RFC 9110 §9.1: methods are case-sensitive
        raise DPoPRejected(ProofReason.METHOD, debug=f"htm {htm[:16]!r} for {method}")
    expected = _NORMALIZED.get(uri) or _normalized(uri)
    if expected is None or (htu != uri and _normalized(htu) != expected):
        raise DPoPRejected(ProofReason.URI, debug=f"htu for {expected}")
    current = _time() if now is None else now
    if not current - rules.max_age <= iat <= current + rules.leeway:
        raise DPoPRejected(ProofReason.IAT, debug=f"iat {iat} at {int(current)}")
    nonce = get("nonce")
    if nonces is not None and (type(nonce) is not str or not nonces.accepts(nonce, current)):
        raise UseDPoPNonce(
            "the authorization server requires a DPoP nonce"
            if nonce is None
            else "the DPoP nonce is not valid",
            nonce=nonces.current(current),
        )
    if access_token is not None:
        ath = get("ath")
        # `compare_digest` takes ASCII strings only (a non-ASCII `ath` cannot match anyway).
        if type(ath) is not str or not ath.isascii() or not _same(ath, _ath(access_token)):
            raise DPoPRejected(ProofReason.ATH)
    return Proof(header.jkt, jti, float(iat), htm, htu, nonce if type(nonce) is str else None)


async def verify_proof(
    proof: str | None,
    *,
    method: str,
    uri: str,
    rules: DPoPRules,
    store: ClaimStore,
    access_token: str | None = None,
    nonces: NonceSource | None = None,
    now: float | None = None,
    namespace: str = "authgate",
) -> Proof:
    """`check_proof`, then the single use of its `jti` across every process sharing `store`
    (`claim_proof`). Raises `DPoPRejected`, `UseDPoPNonce` or `DPoPUnavailable` (503)."""
    checked = check_proof(
        proof,
        method=method,
        uri=uri,
        rules=rules,
        access_token=access_token,
        nonces=nonces,
        now=now,
    )
    await claim_proof(checked, store, rules, namespace=namespace)
    return checked


class ClaimStore(Protocol):
    """What the single use of a `jti` needs of a store (`authgate.limits.store.Store` has it)."""

    async def claim_once(self, key: str, ttl: float) -> bool:
        """True the first time `key` is claimed within `ttl` seconds."""
        ...


async def claim_proof(
    proof: Proof, store: ClaimStore, rules: DPoPRules, *, namespace: str = "authgate"
) -> None:
    """Mark `proof`'s `jti` used (RFC 9449 §11.1): `DPoPRejected` (replay) when it was already,
    `DPoPUnavailable` when the store cannot say."""
    if type(store) is MemoryStore or isinstance(store, MemoryStore):
        key = _local_replay_key(proof, namespace)  # the key `claim_proof_nowait` claims
    else:
        key = replay_key(proof, namespace)
    try:
        first = await store.claim_once(key, rules.replay_ttl)
    except StoreUnavailable as exc:
        raise DPoPUnavailable(debug=str(exc)) from None
    if not first:
        raise DPoPRejected(ProofReason.REPLAY)


def claim_proof_nowait(
    proof: Proof, store: Store, rules: DPoPRules, *, namespace: str = "authgate"
) -> bool:
    """`claim_proof` without waiting when the store is in this process (True: done); False when
    the store must be asked (await `claim_proof`)."""
    # `type(...) is` first: `isinstance` against an ABC subclass costs a metaclass call.
    if type(store) is not MemoryStore and not isinstance(store, MemoryStore):
        return False
    jti = proof.jti  # `_local_replay_key`, inline: this runs for every DPoP request
    key = (
        f"{namespace}:dpop:jti:{proof.jkt}\0{jti}"
        if len(jti) <= _LOCAL_RAW_JTI
        else replay_key(proof, namespace)
    )
    try:
        first = store.claim_once_nowait(key, rules.max_age + rules.leeway + 1)  # `replay_ttl`
    except StoreUnavailable as exc:  # full of live claims: refused, never forgotten
        raise DPoPUnavailable(debug=str(exc)) from None
    if not first:
        raise DPoPRejected(ProofReason.REPLAY)
    return True


def replay_key(proof: Proof, namespace: str = "authgate") -> str:
    """The store key that marks `proof`'s `jti` as used: per key, hashed to a fixed length."""
    digest = hashlib.sha256(f"{proof.jkt}\0{proof.jti}".encode()).digest()
    return f"{namespace}:dpop:jti:{digest[:18].hex()}"


# `jti`s up to this length are claimed in a store in this process as they are: a `MemoryStore`
# compares whole keys, so no hash is needed against collisions; longer ones are hashed, to bound
# its memory.
_LOCAL_RAW_JTI = 64


def _local_replay_key(proof: Proof, namespace: str) -> str:
    """The key of `proof`'s `jti` in a `MemoryStore` (which never leaves this process, so the key
    need not be the one other processes use): the thumbprint and a short `jti` themselves, without
    a SHA-256 per proof. The thumbprint is base64url, so the `\\0` after it makes the key
    unambiguous, and a hashed key has no `\\0`: two proofs share a key only when their key and
    `jti` are the same (a collision could only refuse a proof, never let a replay pass)."""
    jti = proof.jti
    if len(jti) <= _LOCAL_RAW_JTI:
        return f"{namespace}:dpop:jti:{proof.jkt}\0{jti}"
    return replay_key(proof, namespace)


class NonceSource:
    """Server-provided nonces (RFC 9449 §8, §9) without state: a nonce is an HMAC of the current
    time window under `secret`, so every process that shares the secret issues and accepts the
    same ones. A nonce is accepted during its window and the next (`lifetime` to 2 x `lifetime`
    seconds)."""

    def __init__(self, secret: bytes | None = None, *, lifetime: int = 300) -> None:
        if lifetime < 1:
            raise ValueError("the nonce lifetime must be at least 1 second")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.lifetime = lifetime

    def _for_window(self, window: int) -> str:
        mac = hmac.new(self._secret, b"dpop-nonce:%d" % window, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def current(self, now: float | None = None) -> str:
        """The nonce to send in `DPoP-Nonce` now."""
        return self._for_window(int((time.time() if now is None else now) // self.lifetime))

    def accepts(self, nonce: str, now: float | None = None) -> bool:
        """Whether `nonce` is this window's or the previous one's."""
        window = int((time.time() if now is None else now) // self.lifetime)
        given = nonce.encode("ascii", "replace")
        return any(
            hmac.compare_digest(given, self._for_window(w).encode("ascii"))
            for w in (window, window - 1)
        )


def single_proof(values: Sequence[str]) -> str | None:
    """The one `DPoP` field value of a request (None without one); two are refused (§4.3 step 1)."""
    if not values:
        return None
    if len(values) > 1:
        raise DPoPRejected(ProofReason.MULTIPLE)
    return values[0].strip()
