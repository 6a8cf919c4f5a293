"""The DPoP proof check (RFC 9449 §4.3): every rule, and a failing case for each."""

from __future__ import annotations

import base64
import json
import time

import pytest

from authgate.jose.jwk import JWK
from authgate.limits.memory import MemoryStore
from authgate.limits.redis_store import RedisStore
from authgate.oauth.errors import UseDPoPNonce
from authgate.verifier.dpop import (
    DPoPRejected,
    DPoPRules,
    DPoPUnavailable,
    NonceSource,
    Proof,
    ProofReason,
    access_token_hash,
    check_proof,
    claim_proof,
    claim_proof_nowait,
    normalize_htu,
    single_proof,
    verify_proof,
)
from tests.support.dpop import DPoPClient, sign_raw
from tests.support.limits import SHARED_REDIS, free_port

URL = "https://api.example.com/orders"
RULES = DPoPRules()


def _reason(proof: str | None, **kwargs: object) -> ProofReason:
    params: dict[str, object] = {"method": "GET", "uri": URL, "rules": RULES, **kwargs}
    with pytest.raises(DPoPRejected) as caught:
        check_proof(proof, **params)  # type: ignore[arg-type]
    assert caught.value.error == "invalid_dpop_proof"
    assert caught.value.status_code == 400
    return caught.value.reason


@pytest.fixture(scope="module")
def client() -> DPoPClient:
    return DPoPClient()


def test_a_valid_proof_returns_the_key_thumbprint(client: DPoPClient) -> None:
    proof = check_proof(client.proof("GET", URL), method="GET", uri=URL, rules=RULES)
    assert proof.jkt == client.jkt == client.public.thumbprint()
    assert proof.htm == "GET"


@pytest.mark.parametrize(
    ("kty", "alg", "extra"),
    [("RSA", "PS256", {}), ("RSA", "RS256", {}), ("OKP", "EdDSA", {}), ("EC", "ES384", {})],
)
def test_every_asymmetric_family_verifies(kty: str, alg: str, extra: dict[str, object]) -> None:
    other = DPoPClient(kty, alg)
    rules = DPoPRules(algorithms=("ES256", "ES384", "PS256", "RS256", "EdDSA"))
    assert check_proof(other.proof("POST", URL), method="POST", uri=URL, rules=rules).jkt == (
        other.jkt
    )


def test_missing_and_repeated_proofs(client: DPoPClient) -> None:
    assert _reason(None) is ProofReason.MISSING
    assert _reason("") is ProofReason.MISSING
    with pytest.raises(DPoPRejected) as caught:
        single_proof(["a", "b"])
    assert caught.value.reason is ProofReason.MULTIPLE
    assert single_proof([]) is None
    assert single_proof([" x "]) == "x"


@pytest.mark.parametrize(
    "proof",
    ["a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.", "bm90IGpzb24.e30.AA", "W10.e30.AA", "é.e30.AA"],
)
def test_malformed_proofs(proof: str) -> None:
    assert _reason(proof) in (ProofReason.MALFORMED, ProofReason.TYPE)


def test_repeated_members_are_refused(client: DPoPClient) -> None:
    # Two `htu` members: which one a parser keeps differs between parsers, so neither is taken.
    header, _, _ = client.proof("GET", URL).split(".")
    body = (
        f'{{"jti":"j","htm":"GET","htu":"https://evil.test/","htu":"{URL}",'
        f'"iat":{int(time.time())}}}'
    ).encode()
    signing_input = f"{header}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}"
    from authgate.jose import jws  # noqa: PLC0415 - only this case signs raw bytes

    signed = jws.sign(body, client.signing_key, "ES256", json.loads(_b64d(header)))
    assert signed.split(".")[1] == signing_input.split(".")[1]
    assert _reason(signed) is ProofReason.MALFORMED


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_oversized_proof(client: DPoPClient) -> None:
    big = client.proof("GET", URL, claims={"pad": "x" * 9000})
    assert _reason(big) is ProofReason.MALFORMED


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", ""])
def test_typ_must_be_dpop_jwt(client: DPoPClient, typ: str) -> None:
    assert _reason(client.proof("GET", URL, typ=typ)) is ProofReason.TYPE


def test_typ_compares_as_a_media_type(client: DPoPClient) -> None:
    proof = client.proof("GET", URL, typ="application/DPoP+JWT")
    assert check_proof(proof, method="GET", uri=URL, rules=RULES).jkt == client.jkt


def test_alg_none_and_hmac_are_refused(client: DPoPClient) -> None:
    secret = JWK.from_secret(b"k" * 32)
    hs = sign_raw(
        {"jti": "1", "htm": "GET", "htu": URL, "iat": int(time.time())},
        secret,
        "HS256",
        {"typ": "dpop+jwt", "jwk": secret.to_dict(private=True)},
    )
    assert _reason(hs) is ProofReason.ALGORITHM
    good = client.proof("GET", URL)
    _, payload, _ = good.split(".")
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": client.public.to_dict()}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    assert _reason(f"{encoded}.{payload}.") is ProofReason.ALGORITHM


def test_an_algorithm_outside_the_allow_list_is_refused() -> None:
    ps = DPoPClient("RSA", "PS384")
    assert _reason(ps.proof("GET", URL)) is ProofReason.ALGORITHM


def test_rules_refuse_symmetric_algorithms() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        DPoPRules(algorithms=("HS256",))
    with pytest.raises(ValueError, match="asymmetric"):
        DPoPRules(algorithms=("none",))


def test_a_private_key_in_the_header_is_refused(client: DPoPClient) -> None:
    private = client.key.to_dict(private=True)
    assert _reason(client.proof("GET", URL, jwk=private)) is ProofReason.PRIVATE_KEY


def test_a_missing_or_unusable_jwk_is_refused(client: DPoPClient) -> None:
    header = {"typ": "dpop+jwt"}
    no_jwk = sign_raw({"jti": "1"}, client.signing_key, "ES256", header)
    assert _reason(no_jwk) is ProofReason.KEY
    rsa = DPoPClient("RSA", "RS256").public.to_dict()  # an RSA key for an ES256 proof
    assert _reason(client.proof("GET", URL, jwk=rsa)) is ProofReason.KEY
    assert _reason(client.proof("GET", URL, jwk={"kty": "EC", "crv": "P-256"})) is ProofReason.KEY


def test_signature_by_another_key_is_refused(client: DPoPClient) -> None:
    other = DPoPClient()
    forged = client.proof("GET", URL, jwk=other.public.to_dict())
    assert _reason(forged) is ProofReason.SIGNATURE


def test_tampered_payload_is_refused(client: DPoPClient) -> None:
    header, _, signature = client.proof("GET", URL).split(".")
    other = client.proof("POST", URL).split(".")[1]
    assert _reason(f"{header}.{other}.{signature}") is ProofReason.SIGNATURE


@pytest.mark.parametrize("missing", ["jti", "htm", "htu", "iat"])
def test_required_claims(client: DPoPClient, missing: str) -> None:
    assert _reason(client.proof("GET", URL, drop=(missing,))) is ProofReason.CLAIMS


@pytest.mark.parametrize(
    "claims", [{"jti": ""}, {"jti": "x" * 257}, {"jti": 7}, {"iat": "1"}, {"iat": True}]
)
def test_claim_types(client: DPoPClient, claims: dict[str, object]) -> None:
    assert _reason(client.proof("GET", URL, claims=claims)) is ProofReason.CLAIMS


def test_htm_must_equal_the_method(client: DPoPClient) -> None:
    assert _reason(client.proof("POST", URL)) is ProofReason.METHOD
    assert _reason(client.proof("get", URL)) is ProofReason.METHOD


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/orders/7",
        "https://other.example.com/orders",
        "http://api.example.com/orders",
        "https://api.example.com:8443/orders",
        "https://api.example.com/Orders",
        "/orders",
        "https://user@api.example.com/orders",
    ],
)
def test_htu_must_name_the_request_uri(client: DPoPClient, htu: str) -> None:
    assert _reason(client.proof("GET", htu)) is ProofReason.URI


@pytest.mark.parametrize(
    "htu",
    [
        "HTTPS://API.Example.COM/orders",
        "https://api.example.com:443/orders",
        "https://api.example.com/orders?page=2",
        "https://api.example.com/orders#top",
        "https://api.example.com/./x/../orders",
        "https://api.example.com/%6Frders",
    ],
)
def test_htu_is_compared_after_normalisation(client: DPoPClient, htu: str) -> None:
    uri = URL + "?q=1"  # the request's query is ignored too
    assert check_proof(client.proof("GET", htu), method="GET", uri=uri, rules=RULES)


def test_normalize_htu() -> None:
    assert normalize_htu("http://Example.com:80") == "http://example.com/"
    assert normalize_htu("https://[::1]:8443/a/%7e/%2f") == "https://[::1]:8443/a/~/%2F"
    assert normalize_htu("ftp://example.com/") is None
    assert normalize_htu("https://example.com:99999/") is None
    assert normalize_htu("https:///x") is None


def test_iat_window(client: DPoPClient) -> None:
    now = time.time()
    ok = client.proof("GET", URL, iat=int(now) - 30)
    assert check_proof(ok, method="GET", uri=URL, rules=RULES, now=now)
    assert _reason(client.proof("GET", URL, iat=int(now) - 120), now=now) is ProofReason.IAT
    assert _reason(client.proof("GET", URL, iat=int(now) + 60), now=now) is ProofReason.IAT
    assert check_proof(client.proof("GET", URL, iat=now + 4), method="GET", uri=URL, rules=RULES)


def test_ath_binds_the_proof_to_the_access_token(client: DPoPClient) -> None:
    token = "the-access-token"
    proof = client.proof("GET", URL, access_token=token)
    assert check_proof(proof, method="GET", uri=URL, rules=RULES, access_token=token)
    assert _reason(proof, access_token="another-token") is ProofReason.ATH
    assert _reason(client.proof("GET", URL), access_token=token) is ProofReason.ATH
    # RFC 9449 §4.2's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


def test_nonces(client: DPoPClient) -> None:
    nonces = NonceSource(b"s" * 32, lifetime=60)
    now = 1_700_000_000.0
    with pytest.raises(UseDPoPNonce) as caught:
        check_proof(
            client.proof("GET", URL, iat=int(now)), method="GET", uri=URL, rules=RULES,
            nonces=nonces, now=now,
        )  # fmt: skip
    nonce = caught.value.nonce
    assert caught.value.error == "use_dpop_nonce"
    proof = client.proof("GET", URL, iat=int(now), nonce=nonce)
    assert check_proof(proof, method="GET", uri=URL, rules=RULES, nonces=nonces, now=now).nonce
    # The previous window's nonce is still accepted; older ones are not.
    assert nonces.accepts(nonce, now + 60)
    assert not nonces.accepts(nonce, now + 120)
    assert not NonceSource(b"t" * 32, lifetime=60).accepts(nonce, now)
    with pytest.raises(UseDPoPNonce):
        check_proof(
            client.proof("GET", URL, iat=int(now), nonce="made-up"), method="GET", uri=URL,
            rules=RULES, nonces=nonces, now=now,
        )  # fmt: skip


async def test_jti_is_single_use(client: DPoPClient) -> None:
    store = MemoryStore()
    proof = client.proof("GET", URL)
    checked = await verify_proof(proof, method="GET", uri=URL, rules=RULES, store=store)
    with pytest.raises(DPoPRejected) as caught:
        await verify_proof(proof, method="GET", uri=URL, rules=RULES, store=store)
    assert caught.value.reason is ProofReason.REPLAY
    # The same jti from another key is another proof.
    other = DPoPClient().proof("GET", URL, jti=checked.jti)
    assert await verify_proof(other, method="GET", uri=URL, rules=RULES, store=store)


@pytest.mark.parametrize("jti", ["a-jti", "j" * 64, "k" * 65, "x" * 256])
async def test_both_claims_share_a_memory_store_s_keys(client: DPoPClient, jti: str) -> None:
    """A `MemoryStore` claims `jti`s under keys of its own (short ones unhashed, long ones
    hashed): a proof claimed by `claim_proof_nowait` is a replay for `claim_proof`, and the
    reverse, whatever its length."""

    async def claim(nowait: bool, proof: Proof, store: MemoryStore) -> None:
        if nowait:
            assert claim_proof_nowait(proof, store, RULES)
        else:
            await claim_proof(proof, store, RULES)

    for first in (True, False):
        store = MemoryStore()
        proof = check_proof(client.proof("GET", URL, jti=jti), method="GET", uri=URL, rules=RULES)
        await claim(first, proof, store)
        with pytest.raises(DPoPRejected) as caught:
            await claim(not first, proof, store)
        assert caught.value.reason is ProofReason.REPLAY


def test_memory_claims_are_per_key_per_jti_and_per_namespace(client: DPoPClient) -> None:
    store = MemoryStore()
    other = DPoPClient()
    claims = [
        check_proof(c.proof("GET", URL, jti=jti), method="GET", uri=URL, rules=RULES)
        for c in (client, other)
        for jti in ("a", "a\0b", "b", "y" * 65, "y" * 66)
    ]
    for proof in claims:  # no two of them share a key: each is claimed once
        assert claim_proof_nowait(proof, store, RULES)
        assert claim_proof_nowait(proof, store, RULES, namespace="elsewhere")
    for proof in claims:
        with pytest.raises(DPoPRejected):
            claim_proof_nowait(proof, store, RULES)
    assert len(store._claimed) == 2 * len(claims)
    # A short jti is kept as it is, a long one hashed to a fixed length.
    assert max(map(len, store._claimed)) < 64 + 43 + 30


def test_claim_proof_nowait_leaves_other_stores_to_claim_proof(client: DPoPClient) -> None:
    proof = check_proof(client.proof("GET", URL), method="GET", uri=URL, rules=RULES)
    assert not claim_proof_nowait(proof, RedisStore(SHARED_REDIS), RULES)  # type: ignore[arg-type]


async def test_jti_is_single_use_across_processes_through_redis(client: DPoPClient) -> None:
    one, two = RedisStore(SHARED_REDIS, timeout=2.0), RedisStore(SHARED_REDIS, timeout=2.0)
    try:
        proof = client.proof("GET", URL)
        assert await verify_proof(proof, method="GET", uri=URL, rules=RULES, store=one)
        with pytest.raises(DPoPRejected) as caught:
            await verify_proof(proof, method="GET", uri=URL, rules=RULES, store=two)
        assert caught.value.reason is ProofReason.REPLAY
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_store_that_cannot_answer_refuses_the_proof(client: DPoPClient) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    try:
        with pytest.raises(DPoPUnavailable) as caught:
            await verify_proof(client.proof("GET", URL), method="GET", uri=URL, rules=RULES,
                               store=store)  # fmt: skip
        assert caught.value.status_code == 503
    finally:
        await store.aclose()


def test_descriptions_never_echo_the_proof(client: DPoPClient) -> None:
    proof = client.proof("POST", URL)
    with pytest.raises(DPoPRejected) as caught:
        check_proof(proof, method="GET", uri=URL, rules=RULES)
    assert proof not in str(caught.value.to_dict())


def _signed_with_header(client: DPoPClient, header: dict[str, object]) -> str:
    """A proof under exactly `header`, signed by hand: `jws.sign` itself refuses such headers."""
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: PLC0415
        decode_dss_signature,
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {"jti": "h", "htm": "GET", "htu": URL, "iat": int(time.time())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    private = serialization.load_pem_private_key(client.key.to_pem(private=True), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.mark.parametrize(
    "extra",
    [
        {"kid": 7},  # RFC 7515 §4.1.4: a string
        {"crit": ["x-unknown"], "x-unknown": 1},  # §4.1.11: not understood
        {"crit": ["b64"], "b64": True},  # RFC 7797: a proof is a plain JWS (§4.2 of RFC 9449)
        {"crit": []},
    ],
)
def test_the_jws_header_rules_apply_to_a_proof(
    client: DPoPClient, extra: dict[str, object]
) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": client.public.to_dict()}
    good = _signed_with_header(client, header)
    assert check_proof(good, method="GET", uri=URL, rules=RULES).jkt == client.jkt
    bad = _signed_with_header(client, {**header, **extra})
    assert _reason(bad) is ProofReason.MALFORMED
    assert _reason(bad) is ProofReason.MALFORMED  # refused again: such a header is never cached


async def test_a_memory_store_full_of_live_claims_answers_503_not_a_pass(
    client: DPoPClient,
) -> None:
    """RFC 9449 §11.1: a store that can hold no more live claims refuses the proof (503) rather
    than forget a claim, whose replay would then pass."""
    store = MemoryStore(max_claims=1)
    first = check_proof(client.proof("GET", URL), method="GET", uri=URL, rules=RULES)
    assert claim_proof_nowait(first, store, RULES)
    second = check_proof(client.proof("GET", URL), method="GET", uri=URL, rules=RULES)
    with pytest.raises(DPoPUnavailable):
        claim_proof_nowait(second, store, RULES)
    with pytest.raises(DPoPUnavailable):
        await claim_proof(second, store, RULES)
    with pytest.raises(DPoPRejected) as caught:  # the first claim is still remembered
        claim_proof_nowait(first, store, RULES)
    assert caught.value.reason is ProofReason.REPLAY
