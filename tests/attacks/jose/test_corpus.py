"""The attack corpus: hostile tokens, keys and claims, from RFC 8725 and the advisories of other
JOSE libraries. Every hostile input must raise the specific `JoseError` subclass named in the
test, and nothing else: no other exception type, no acceptance.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authgate.jose import (
    JWK,
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidSignature,
    JoseError,
    JWKSet,
    KeyNotFound,
    MalformedToken,
    NotYetValid,
    jws,
    jwt,
)
from authgate.jose._algorithms import JWS_ALGORITHMS
from authgate.jose._signatures import signer, verifier
from authgate.jose.encoding import b64url_decode
from tests.support.tokens import b64url_bytes, compact_json

ALL_ALGS = sorted(JWS_ALGORITHMS)
SECRET = JWK.from_secret(b"s" * 32, kid="hmac")
RSA = JWK.generate("RSA", kid="rsa")
EC = JWK.generate("EC", crv="P-256", kid="ec")
NOW = 1_700_000_000
# Group orders n (SEC 2): r or s equal to 0 or n must never verify.
ORDERS = {
    "ES256": (32, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "ES256K": (32, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141),
}


def segment(value: bytes | dict[str, Any]) -> str:
    raw = value if isinstance(value, bytes) else compact_json(value)
    return b64url_bytes(raw).decode()


def forge(header: bytes | dict[str, Any], payload: bytes, key: JWK, alg: str) -> str:
    """A token whose signature is valid for `key` over an arbitrary (hostile) header and payload."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = signer(key, alg)(signing_input.encode())
    return f"{signing_input}.{b64url_bytes(signature).decode()}"


def claims(**extra: Any) -> bytes:
    return compact_json({"iss": "https://issuer.example", "sub": "alice", **extra})


# -- alg "none" -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_never_accepted(spelling: str, signature: str) -> None:
    token = f"{segment({'alg': spelling})}.{segment(claims())}.{signature}"
    for key in (SECRET, RSA.public(), JWKSet([RSA.public(), EC.public()])):
        with pytest.raises(AlgorithmNotAllowed):
            jws.verify(token, key, ALL_ALGS)
        with pytest.raises(AlgorithmNotAllowed):
            jwt.decode(token, key, algorithms=ALL_ALGS)


@pytest.mark.parametrize("algorithms", [["none"], ["HS256", "none"], ["None"], ["NONE"]])
def test_none_in_the_allow_list_is_refused(algorithms: list[str]) -> None:
    token = jws.sign(b"payload", SECRET, "HS256")
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, SECRET, algorithms)


def test_none_cannot_be_produced() -> None:
    with pytest.raises(AlgorithmNotAllowed):
        jws.sign(b"payload", SECRET, "none")


@pytest.mark.parametrize(
    "algorithms",
    ["HS256", [], (), [None], ["HS1"], ["RSA-OAEP"], ["A256GCM"], 42, [["HS256"]]],
)
def test_allow_lists_must_be_explicit_and_known(algorithms: Any) -> None:
    token = jws.sign(b"payload", SECRET, "HS256")
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, SECRET, algorithms)


def test_an_algorithm_outside_the_allow_list_is_refused() -> None:
    token = jws.sign(b"payload", SECRET, "HS256")
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, SECRET, ["HS384", "RS256"])


# -- key confusion: an asymmetric public key used as an HMAC secret (CVE-2015-9235) ---------------


def public_encodings(key: JWK) -> Iterator[tuple[str, bytes]]:
    public = key._public
    assert public is not None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    yield "PEM", key.to_pem()
    yield "PEM with leading newline", b"\n" + key.to_pem()
    yield "DER", public.public_bytes(serialization.Encoding.DER, spki)
    yield "JWK JSON", json.dumps(key.public().to_dict()).encode()
    yield (
        "OpenSSH",
        public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    )


@pytest.mark.parametrize("victim", [RSA, EC], ids=["RSA", "EC"])
def test_public_keys_cannot_verify_hmac_tokens(victim: JWK) -> None:
    """The attacker signs HS256 with the victim's public key material as the secret."""
    public = victim.public()
    for _, material in public_encodings(victim):
        forged = f"{segment({'alg': 'HS256'})}.{segment(claims())}"
        mac = hmac.HMAC(material, hashes.SHA256())
        mac.update(forged.encode())
        token = f"{forged}.{b64url_bytes(mac.finalize()).decode()}"
        with pytest.raises(InvalidKey):
            jws.verify(token, public, ALL_ALGS)
        # Through a set: no kid -> no HMAC-capable key; the victim's kid -> that key refuses.
        with pytest.raises(KeyNotFound):
            jws.verify(token, JWKSet([public]), ALL_ALGS)
        kid_token = f"{segment({'alg': 'HS256', 'kid': victim.kid})}.{segment(claims())}.x"
        with pytest.raises(InvalidKey):
            jws.verify(kid_token, JWKSet([public]), ALL_ALGS)


@pytest.mark.parametrize("victim", [RSA, EC], ids=["RSA", "EC"])
def test_public_key_encodings_are_refused_as_secrets(victim: JWK) -> None:
    for _, material in public_encodings(victim):
        with pytest.raises(InvalidKey):
            JWK.from_secret(material)
        with pytest.raises(InvalidKey):
            JWK.from_dict({"kty": "oct", "k": b64url_bytes(material).decode()})
    private_der = victim.to_pem(private=True)
    with pytest.raises(InvalidKey):
        JWK.from_secret(private_der)


def test_pem_is_never_read_as_a_secret_by_from_pem() -> None:
    key = JWK.from_pem(RSA.to_pem())
    assert key.kty == "RSA"
    with pytest.raises(InvalidKey):
        jws.sign(b"x", key, "HS256")


# -- headers never pick or supply a key (RFC 8725 §3.10) ------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a URL from a token was fetched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_embedded_keys_and_urls_are_ignored(member: str) -> None:
    attacker = JWK.generate("EC", crv="P-256", kid=EC.kid)
    values = {
        "jwk": attacker.public().to_dict(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIBszCCAVmgAwIBAgIUAttackerCertificate"],
    }
    token = forge(
        {"alg": "ES256", "kid": EC.kid, member: values[member]}, claims(), attacker, "ES256"
    )
    with pytest.raises(InvalidSignature):
        jws.verify(token, EC.public(), ALL_ALGS)
    with pytest.raises(InvalidSignature):
        jwt.decode(token, JWKSet([EC.public()]), algorithms=ALL_ALGS)
    # The same header on a token the caller's key did sign is fine: the member is just ignored.
    genuine = forge({"alg": "ES256", member: values[member]}, claims(), EC, "ES256")
    assert jws.verify(genuine, EC.public(), ["ES256"]).header[member] == values[member]


# -- kid is an opaque, exact-match lookup key -----------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../../../dev/null",
        "/etc/passwd",
        "' OR '1'='1",
        "x'; DROP TABLE keys; --",
        "|cat /etc/passwd",
        "\x00",
        "rsa\x00",
        "RSA",
        " rsa",
        "k" * 10_000,
        "🔑",
        "",
    ],
)
def test_hostile_kids_are_opaque_non_matching_strings(kid: str) -> None:
    jwks = JWKSet([RSA.public(), EC.public()])
    token = forge({"alg": "RS256", "kid": kid}, claims(), RSA, "RS256")
    with pytest.raises(KeyNotFound):
        jws.verify(token, jwks, ALL_ALGS)


@pytest.mark.parametrize("kid", [1, 0, True, None, [], ["rsa"], {"kid": "rsa"}, 1.5])
def test_non_string_kids_are_malformed(kid: Any) -> None:
    token = forge({"alg": "RS256", "kid": kid}, claims(), RSA, "RS256")
    for key in (RSA.public(), JWKSet([RSA.public()])):
        with pytest.raises(MalformedToken):
            jws.verify(token, key, ALL_ALGS)


def test_kid_selecting_a_key_of_another_family_is_refused() -> None:
    jwks = JWKSet([RSA.public(), EC.public()])
    token = forge({"alg": "RS256", "kid": "ec"}, claims(), RSA, "RS256")
    with pytest.raises(InvalidKey):
        jws.verify(token, jwks, ALL_ALGS)


# -- crit (RFC 7515 §4.1.11) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": NOW},  # a member we do not understand
        {"crit": ["alg"]},  # a registered name may not be listed
        {"crit": ["kid"], "kid": "hmac"},
        {"crit": []},
        {"crit": "b64", "b64": True},
        {"crit": [1]},
        {"crit": None},
        {"crit": ["x-custom"]},  # listed but absent
        {"crit": ["x-custom", "x-custom"], "x-custom": 1},
    ],
)
def test_crit_is_enforced(extra: dict[str, Any]) -> None:
    token = forge({"alg": "HS256", **extra}, claims(), SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, ["HS256"])


def test_b64_false_is_refused_for_jwts() -> None:
    header = {"alg": "HS256", "b64": False, "crit": ["b64"]}
    token = forge(header, b"{}", SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])
    with pytest.raises(MalformedToken):
        jwt.encode({"sub": "x"}, SECRET, "HS256", {"b64": False, "crit": ["b64"]})
    # Even b64: true (an ordinary payload) is refused in a JWT header.
    token = jws.sign(claims(), SECRET, "HS256", {"b64": True, "crit": ["b64"]})
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])


# -- duplicate JSON members (RFC 7515 §5.2, RFC 8725 §3.10) --------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg":"HS256","alg":"none"}',
        b'{"alg":"none","alg":"HS256"}',
        b'{"alg":"HS256","kid":"a","kid":"hmac"}',
        b'{"alg":"HS256","\\u0061lg":"HS256"}',  # the same name, escaped
        b'{"alg":"HS256","x":{"y":1,"y":2}}',  # nested
    ],
)
def test_duplicate_header_members_are_refused(header: bytes) -> None:
    token = forge(header, claims(), SECRET, "HS256")
    with pytest.raises(MalformedToken, match="duplicate"):
        jws.verify(token, SECRET, ["HS256"])


@pytest.mark.parametrize(
    "payload",
    [
        b'{"sub":"alice","sub":"admin"}',
        b'{"aud":"api","aud":"admin-api"}',
        b'{"sub":"alice","\\u0073ub":"admin"}',
        b'{"cnf":{"jkt":"a","jkt":"b"}}',
        b'{"roles":[{"name":"user","name":"admin"}]}',
    ],
)
def test_duplicate_claims_are_refused(payload: bytes) -> None:
    token = forge({"alg": "HS256"}, payload, SECRET, "HS256")
    with pytest.raises(MalformedToken, match="duplicate"):
        jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'"claims"', b"null", b"1", b"{", b'{"a":NaN}', b'{"a":Infinity}', b"\xff\xfe"],
)
def test_claims_must_be_a_json_object(payload: bytes) -> None:
    token = forge({"alg": "HS256"}, payload, SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header",
    [b"[]", b"", b"{", b'{"alg":"HS256"} x', b'{"alg":"HS256","n":' + b"9" * 5000 + b"}"],
)
def test_headers_must_be_json_objects(header: bytes) -> None:
    token = forge(header, claims(), SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, ["HS256"])


def test_deeply_nested_json_is_malformed() -> None:
    deep = b'{"alg":"HS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    token = forge(deep, claims(), SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, ["HS256"])
    token = forge({"alg": "HS256"}, b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}", SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize(
    "payload",
    [b'{"sub":"\\ud800"}', b'{"\\udfff":1}', b'{"a":["x\\udbff"]}', b'{"a":{"b":"\\ud800x"}}'],
)
def test_lone_surrogates_are_malformed(payload: bytes) -> None:
    """RFC 7493 §2.1: a lone surrogate cannot be re-encoded; refuse it rather than crash later."""
    token = forge({"alg": "HS256"}, payload, SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])
    header = forge(b'{"alg":"HS256","kid":"\\ud800"}', b"{}", SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jws.verify(header, SECRET, ["HS256"])
    # A proper surrogate pair is one character.
    pair = forge({"alg": "HS256"}, b'{"sub":"\\ud83d\\ude00"}', SECRET, "HS256")
    assert jwt.decode(pair, SECRET, algorithms=["HS256"]) == {"sub": "\U0001f600"}


def test_surrounding_whitespace_in_json_is_legal() -> None:
    token = forge(b' \n{"alg":"HS256"}\t ', b' {"sub":"alice"} \r\n', SECRET, "HS256")
    assert jwt.decode(token, SECRET, algorithms=["HS256"]) == {"sub": "alice"}


# -- base64url: canonical, unpadded, nothing foreign (RFC 7515 §2) --------------------------------


def _variants(good: str) -> Iterator[str]:
    """Encodings that a lenient decoder would read as the same bytes as `good`."""
    if len(good) % 4:
        yield good + "=" * (-len(good) % 4)
    yield good + "=="
    yield " " + good
    yield good + "\n"
    yield good[:4] + "\r\n" + good[4:]
    yield good.replace("-", "+").replace("_", "/")
    yield good[:-1] + "?" + good[-1]
    if len(good) % 4 == 0:
        yield good + "A"  # a dangling character: length 1 mod 4


def test_non_canonical_encodings_of_each_segment_are_refused() -> None:
    token = jws.sign(b"\xfb\xff\xfe" * 11, SECRET, "HS256")  # payload with '-' and '_' in it
    header, payload, signature = token.split(".")
    assert "-" in payload or "_" in payload
    for index in range(3):
        parts = [header, payload, signature]
        for variant in _variants(parts[index]):
            if variant == parts[index]:
                continue
            parts_variant = list(parts)
            parts_variant[index] = variant
            with pytest.raises(MalformedToken):
                jws.verify(".".join(parts_variant), SECRET, ["HS256"])


def test_non_zero_trailing_bits_are_refused_even_when_the_mac_would_match() -> None:
    """'...A' and '...B' decode to the same bytes when the last 4 bits are unused: a lenient
    decoder would accept a token altered after signing (RFC 4648 §3.5)."""
    token = jws.sign(b"payload", SECRET, "HS256")
    header, payload, signature = token.split(".")
    assert len(signature) % 4 == 3  # 32 bytes: 43 characters, 2 unused bits
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(signature[-1])
    for bits in (1, 2, 3):
        sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last | bits]
        altered = f"{header}.{payload}.{signature[:-1]}{sibling}"
        assert altered != token
        with pytest.raises(MalformedToken):
            jws.verify(altered, SECRET, ["HS256"])


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",  # a JWE
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9.e30.\udcff",
    ],
)
def test_structurally_broken_tokens_are_malformed(token: str) -> None:
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, ["HS256"])


def test_empty_payload_and_signature_segments_are_a_signature_failure() -> None:
    """Structurally valid (an empty payload is legal): the empty signature simply fails."""
    with pytest.raises(InvalidSignature):
        jws.verify(f"{segment({'alg': 'HS256'})}..", SECRET, ["HS256"])


@pytest.mark.parametrize("token", [None, 42, 1.5, ["a.b.c"], {"token": "a.b.c"}, bytearray(b"a")])
def test_tokens_of_other_types_are_malformed(token: Any) -> None:
    with pytest.raises(MalformedToken):
        jws.verify(token, SECRET, ["HS256"])
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"])


# -- size cap: rejected before any decoding or cryptography ---------------------------------------


def test_oversized_tokens_are_refused_before_any_cryptography(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    verify_real = verifier(SECRET, "HS256")

    def counting(data: bytes, signature: bytes) -> bool:
        calls.append(data)
        return verify_real(data, signature)

    monkeypatch.setitem(SECRET._verifiers, "HS256", counting)
    fits = jws.sign(b"x" * (jws.MAX_TOKEN_SIZE // 2), SECRET, "HS256")
    assert jws.verify(fits, SECRET, ["HS256"]).payload
    assert len(calls) == 1
    huge = jws.sign(b"x" * jws.MAX_TOKEN_SIZE, SECRET, "HS256")
    calls.clear()
    for candidate in (huge, huge.encode(), "." * (jws.MAX_TOKEN_SIZE + 1)):
        with pytest.raises(MalformedToken, match="exceeds"):
            jws.verify(candidate, SECRET, ["HS256"])
        with pytest.raises(MalformedToken, match="exceeds"):
            jwt.decode(candidate, SECRET, algorithms=["HS256"])
    assert calls == []
    # The cap is the caller's to lower.
    small = jws.sign(b"x" * 100, SECRET, "HS256")
    with pytest.raises(MalformedToken, match="exceeds"):
        jws.verify(small, SECRET, ["HS256"], max_size=64)


# -- NumericDate claims (RFC 7519 §2) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "raw",
    [
        "true",
        "false",
        "null",
        "1e400",
        "-1e400",
        '"1700000000"',
        "[1700000000]",
        "{}",
        "9007199254740993",
        "-9007199254740993",
        "1" + "0" * 30,
    ],
)
def test_numeric_dates_must_be_finite_numbers(name: str, raw: str) -> None:
    payload = f'{{"sub":"alice","{name}":{raw}}}'.encode()
    token = forge({"alg": "HS256"}, payload, SECRET, "HS256")
    with pytest.raises(InvalidClaim) as info:
        jwt.decode(token, SECRET, algorithms=["HS256"], now=NOW)
    assert info.value.claim == name
    assert type(info.value) is InvalidClaim  # not ExpiredToken / NotYetValid


def test_integers_beyond_pythons_digit_limit_are_malformed() -> None:
    token = forge({"alg": "HS256"}, b'{"exp":' + b"9" * 5000 + b"}", SECRET, "HS256")
    with pytest.raises(MalformedToken):
        jwt.decode(token, SECRET, algorithms=["HS256"], now=NOW)


def test_numeric_date_boundaries() -> None:
    def decode(**claim: Any) -> dict[str, Any]:
        return jwt.decode(jwt.encode(claim, SECRET, "HS256"), SECRET, algorithms=["HS256"], now=NOW)

    assert decode(exp=NOW + 1)["exp"] == NOW + 1
    assert decode(exp=NOW + 0.5)["exp"] == NOW + 0.5
    with pytest.raises(ExpiredToken):
        decode(exp=NOW)  # RFC 7519 §4.1.4: on or after exp, the token is expired
    with pytest.raises(ExpiredToken):
        decode(exp=-(2**53))
    assert decode(nbf=NOW)["nbf"] == NOW
    with pytest.raises(NotYetValid):
        decode(nbf=NOW + 1)
    assert decode(iat=NOW + 60)["iat"] == NOW + 60
    with pytest.raises(NotYetValid) as info:
        decode(iat=NOW + 61)
    assert info.value.claim == "iat"
    with pytest.raises(NotYetValid):
        decode(iat=2**53)


def test_leeway_and_now_must_be_finite() -> None:
    token = jwt.encode({"exp": NOW - 10}, SECRET, "HS256")
    assert jwt.decode(token, SECRET, algorithms=["HS256"], now=NOW, leeway=11)
    for leeway in (float("nan"), float("inf"), -1):
        with pytest.raises(ValueError, match="leeway"):
            jwt.decode(token, SECRET, algorithms=["HS256"], now=NOW, leeway=leeway)
    for now in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="now"):
            jwt.decode(token, SECRET, algorithms=["HS256"], now=now)


# -- string claims and audiences (RFC 7519 §4.1) -----------------------------------------------


@pytest.mark.parametrize("name", ["iss", "sub", "jti"])
@pytest.mark.parametrize("value", [1, None, True, ["x"], {"x": 1}])
def test_string_claims_must_be_strings(name: str, value: Any) -> None:
    token = forge({"alg": "HS256"}, compact_json({name: value}), SECRET, "HS256")
    with pytest.raises(InvalidClaim) as info:
        jwt.decode(token, SECRET, algorithms=["HS256"], now=NOW)
    assert info.value.claim == name


@pytest.mark.parametrize("aud", [1, None, True, [], [1], ["api", 2], {"api": True}, [["api"]]])
def test_malformed_audiences_are_refused(aud: Any) -> None:
    token = forge({"alg": "HS256"}, compact_json({"aud": aud}), SECRET, "HS256")
    for audience in ("api", None):
        with pytest.raises(InvalidClaim) as info:
            jwt.decode(token, SECRET, algorithms=["HS256"], audience=audience, now=NOW)
        assert info.value.claim == "aud"


def test_audience_rules() -> None:
    def decode(aud: Any, audience: Any) -> dict[str, Any]:
        token = jwt.encode({} if aud is None else {"aud": aud}, SECRET, "HS256")
        return jwt.decode(token, SECRET, algorithms=["HS256"], audience=audience, now=NOW)

    assert decode("api", "api")["aud"] == "api"
    assert decode(["web", "api"], "api")["aud"] == ["web", "api"]
    assert decode("api", ["other", "api"])["aud"] == "api"
    assert decode(["web", "api"], {"api"})["aud"] == ["web", "api"]
    for aud, audience in (("api", "API"), (["web"], "api"), ("api", ["web"]), ("api", None),
                          (None, "api"), ("api2", "api"), ("ap", "api")):  # fmt: skip
        with pytest.raises(InvalidClaim) as info:
            decode(aud, audience)
        assert info.value.claim == "aud"


def test_issuer_rules() -> None:
    token = jwt.encode({"iss": "https://issuer.example"}, SECRET, "HS256")
    assert jwt.decode(token, SECRET, algorithms=["HS256"], issuer="https://issuer.example")
    assert jwt.decode(token, SECRET, algorithms=["HS256"], issuer=["a", "https://issuer.example"])
    for issuer in ("https://issuer.example/", "https://ISSUER.example", ["a"], "https://issuer"):
        with pytest.raises(InvalidClaim) as info:
            jwt.decode(token, SECRET, algorithms=["HS256"], issuer=issuer)
        assert info.value.claim == "iss"
    with pytest.raises(InvalidClaim):
        jwt.decode(jwt.encode({}, SECRET, "HS256"), SECRET, algorithms=["HS256"], issuer="x")


def test_required_claims_and_typ() -> None:
    token = jwt.encode({"sub": "a"}, SECRET, "HS256", {"typ": "at+jwt"})
    assert jwt.decode(token, SECRET, algorithms=["HS256"], typ="application/AT+JWT")
    with pytest.raises(InvalidClaim) as info:
        jwt.decode(token, SECRET, algorithms=["HS256"], typ="JWT")
    assert info.value.claim == "typ"
    with pytest.raises(InvalidClaim) as info:
        jwt.decode(token, SECRET, algorithms=["HS256"], required=["sub", "exp"])
    assert info.value.claim == "exp"
    untyped = forge({"alg": "HS256"}, b"{}", SECRET, "HS256")
    with pytest.raises(InvalidClaim):
        jwt.decode(untyped, SECRET, algorithms=["HS256"], typ="JWT")
    for typ in (1, None, ["JWT"]):
        bad = forge({"alg": "HS256", "typ": typ}, b"{}", SECRET, "HS256")
        with pytest.raises(MalformedToken):
            jwt.decode(bad, SECRET, algorithms=["HS256"])


def test_encode_refuses_mistyped_registered_claims() -> None:
    for claim in ({"exp": True}, {"exp": "soon"}, {"iat": float("inf")}, {"aud": 1}, {"sub": 2}):
        with pytest.raises(InvalidClaim):
            jwt.encode(claim, SECRET, "HS256")


# -- ECDSA signature encodings (RFC 7518 §3.4; CVE-2022-21449) ---------------------------------


@pytest.mark.parametrize("alg", sorted(ORDERS))
def test_ecdsa_out_of_range_r_and_s_never_verify(alg: str) -> None:
    size, n = ORDERS[alg]
    key = JWK.generate("EC", alg=alg)
    token = jws.sign(b"payload", key, alg)
    header, payload, _ = token.split(".")
    for r, s in ((0, 0), (0, 1), (1, 0), (n, 1), (1, n), (n, n), (n + 1, 1), (2**256 - 1, 1)):
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        forged = f"{header}.{payload}.{b64url_bytes(signature).decode()}"
        with pytest.raises(InvalidSignature):
            jws.verify(forged, key.public(), [alg])


def test_ecdsa_der_signatures_are_refused() -> None:
    token = jws.sign(b"payload", EC, "ES256")
    header, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    forged = f"{header}.{payload}.{b64url_bytes(der).decode()}"
    with pytest.raises(InvalidSignature):
        jws.verify(forged, EC.public(), ["ES256"])
    # n - s is the other valid signature for the same r: ECDSA is malleable, and JOSE accepts
    # both (RFC 7518 does not require low-s); what matters is that the value stays in range.
    n = ORDERS["ES256"][1]
    high_s = raw[:32] + (n - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    assert jws.verify(f"{header}.{payload}.{b64url_bytes(high_s).decode()}", EC.public(), ["ES256"])


@pytest.mark.parametrize(
    ("key", "alg"),
    [(SECRET, "HS256"), (RSA, "RS256"), (RSA, "PS256"), (EC, "ES256")],
    ids=["HS256", "RS256", "PS256", "ES256"],
)
def test_wrong_length_signatures_fail_alike(key: JWK, alg: str) -> None:
    token = jws.sign(b"payload", key, alg)
    header, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    verifier = key if key.kty == "oct" else key.public()
    messages = set()
    for bad in (b"", raw[:-1], raw + b"\x00", b"\x00" + raw, raw * 2, b"\x00" * len(raw)):
        with pytest.raises(InvalidSignature) as info:
            jws.verify(f"{header}.{payload}.{b64url_bytes(bad).decode()}", verifier, [alg])
        messages.add(str(info.value))
    # No oracle: every signature failure reads the same.
    assert messages == {"signature verification failed"}


def test_eddsa_signature_forms() -> None:
    key = JWK.generate("OKP", crv="Ed25519")
    token = jws.sign(b"payload", key, "EdDSA")
    header, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    # S >= L (the group order) is the malleable twin of a valid signature (RFC 8032 §5.1.7).
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(raw[32:], "little")
    twin = raw[:32] + (s + order).to_bytes(32, "little")
    for bad in (twin, raw[:-1], b"\x00" * 64):
        with pytest.raises(InvalidSignature):
            jws.verify(f"{header}.{payload}.{b64url_bytes(bad).decode()}", key.public(), ["EdDSA"])


# -- weak and confused keys ------------------------------------------------------------------------


def test_weak_keys_are_refused() -> None:
    with pytest.raises(InvalidKey):
        JWK.generate("RSA", size=1024)
    with pytest.raises(InvalidKey):
        jws.sign(b"x", JWK.from_secret(b"k" * 31), "HS256")
    with pytest.raises(InvalidKey):
        jws.sign(b"x", JWK.from_secret(b"k" * 47), "HS384")
    with pytest.raises(InvalidKey):
        jws.verify(
            jws.sign(b"x", JWK.from_secret(b"k" * 64), "HS512"),
            JWK.from_secret(b"k" * 63),
            ["HS512"],
        )
    with pytest.raises(InvalidKey):
        JWK.from_secret(b"")


def test_secrets_never_appear_in_error_messages() -> None:
    secret = b"super-secret-value-0123456789"  # 29 bytes: too short for HS256
    key = JWK.from_secret(secret)
    encoded = b64url_bytes(secret).decode()
    for action in (
        lambda: jws.sign(b"x", key, "HS256"),
        key.to_dict,
        lambda: JWK.from_dict({"kty": "oct", "k": encoded + "="}),
    ):
        with pytest.raises(JoseError) as info:
            action()
        assert secret.decode() not in str(info.value)
        assert encoded not in str(info.value)
    assert encoded not in repr(key)


def test_mixed_and_ambiguous_key_sets_are_refused() -> None:
    with pytest.raises(InvalidKey):
        JWKSet([SECRET, RSA.public()])
    with pytest.raises(InvalidKey):
        JWKSet([RSA.public(), JWK.generate("RSA", kid="rsa")])
    with pytest.raises(InvalidKey):
        JWKSet.from_dict({"keys": [RSA.public().to_dict(), dict(EC.public().to_dict(), kid="rsa")]})
